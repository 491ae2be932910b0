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
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import ExitCode, UsageError, exit_code
from harness.resources import cache_dir

log = logging.getLogger("harness")


def failed(e: Exception, argv: Sequence[str] | None) -> ExitCode:
    """Say on stderr, in one line, why the command (`argv`; None: sys.argv's) failed (with -vv the traceback follows);
    return its exit code."""
    code = exit_code(e)
    if code is ExitCode.INTERNAL:
        where = save_traceback(e, sys.argv[1:] if argv is None else list(argv))
        said = f"details in {where}" if isinstance(where, Path) else f"no log written ({where}); -vv shows the traceback"
        what = type(e).__name__ + (f": {' '.join(str(e).splitlines())}" if str(e) else "")
        print(f"rollout-harness: internal error: {what}; {said}", file=sys.stderr)
    else:
        print(f"rollout-harness: error: {e}", file=sys.stderr)
        if isinstance(e, UsageError) and e.usage:  # the parser refused the command line: what it accepts, in one line
            print(e.usage, file=sys.stderr)
    log.debug("detail", exc_info=e)
    return code


def save_traceback(e: Exception, argv: list[str]) -> Path | str:
    """Write what a bug report needs (version, arguments, Python, the traceback) to a new log file: its path, or why
    no file could be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    text = f"rollout-harness {__version__}, internal error at {stamp} UTC\narguments: {argv}\npython: {sys.version}\n\n" + "".join(
        traceback.format_exception(e)
    )
    why = ""
    for directory in (cache_dir() / "logs", None):  # None: the system's temporary directory
        try:
            if directory is not None:
                directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"rollout-harness-internal-error-{stamp}-", suffix=".log", dir=directory)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return Path(name)
        except OSError as err:
            why = err.strerror or str(err)
    return why
