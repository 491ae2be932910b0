"""How a failure reaches the user: one line on stderr and the exit code harness.errors.EXIT_CODES gives it. A
HarnessError says what went wrong; any other exception is a bug, whose traceback goes to a log file (under the cache
directory's logs/, else a temporary file) that the line names, never to the terminal (but at -vv)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from harness import __version__
from harness.errors import ExitCode, exit_code
from harness.resources import cache_dir

log = logging.getLogger("harness")


def failed(e: Exception) -> ExitCode:
    """Say on stderr, in one line, why the command failed (with -vv the traceback follows); return its exit code."""
    code = exit_code(e)
    if code is ExitCode.INTERNAL:
        where = save_traceback(e)
        said = f"details in {where}" if isinstance(where, Path) else f"no log written ({where}); -vv shows the traceback"
        message = " ".join(str(e).splitlines())
        print(f"rollout-harness: internal error: {type(e).__name__}: {message}; {said}", file=sys.stderr)
    else:
        print(f"rollout-harness: error: {e}", file=sys.stderr)
    log.debug("detail", exc_info=e)
    return code


def save_traceback(e: Exception) -> Path | str:
    """Write what a bug report needs (version, argv, Python, the traceback) to a new log file: its path, or why no
    file could be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    text = f"rollout-harness {__version__}, internal error at {stamp} UTC\nargv: {sys.argv}\npython: {sys.version}\n\n" + "".join(
        traceback.format_exception(e)
    )
    try:
        logs = cache_dir() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"internal-error-{stamp}-{os.getpid()}.log"
        path.write_text(text)
        return path
    except OSError:
        pass
    try:
        fd, name = tempfile.mkstemp(prefix="rollout-harness-internal-error-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return Path(name)
    except OSError as err:
        return err.strerror or str(err)
