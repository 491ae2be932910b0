"""Output files written whole or not at all: a reader (`report`, a CI step) sees the old file or the complete new one,
never a part, whatever kills the process or fills the disk meanwhile."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from harness.errors import EnvironmentProblem


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write `text` (a string, or its parts in order) to `path`: into a new file in the same directory, flushed to
    disk, then renamed over `path`. Creates the directory. An OSError is an EnvironmentProblem naming the file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("x") as fh:
            if isinstance(text, str):
                fh.write(text)
            else:
                fh.writelines(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise EnvironmentProblem(f"cannot write {path}: {e.strerror or e}") from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # gone once renamed
