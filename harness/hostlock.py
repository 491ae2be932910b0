"""Advisory locks shared by every harness process on this host (flock on files in the cache directory; the
kernel releases them when a process dies, so a killed run never leaves one behind)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Callable, Iterator

from harness.resources import cache_dir

POLL = 0.2


def _open(name: str) -> int:
    path = cache_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


@contextlib.contextmanager
def held(name: str) -> Iterator[None]:
    """Hold lock `name` for a short critical section (blocks until it is free)."""
    fd = _open(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def free(name: str) -> bool:
    """Whether no process holds lock `name` right now (taken and released at once)."""
    fd = _open(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def held_async(name: str, on_wait: Callable[[], None] | None = None, shared: bool = False) -> AsyncIterator[None]:
    """Hold lock `name` without blocking the event loop; on_wait() is called once if another holder keeps it.
    shared: with other shared holders, never with an exclusive one. Cancellable while waiting."""
    fd = _open(name)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                await asyncio.sleep(POLL)
        yield
    finally:
        os.close(fd)
