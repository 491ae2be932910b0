"""Advisory locks shared by every harness process on this host (flock on files; the kernel releases them when a
process dies, so a killed run never leaves one behind).

Most live in the cache directory. A lock on something every user of the host shares (the kind cluster: its name is
global to the docker daemon) lives in system_dir() instead, the same for every HOME and RH_CACHE: root and a user,
or two CI jobs with their own HOMEs, exclude each other (system_held)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from harness.resources import cache_dir

POLL = 0.2


def _open(name: str) -> int:
    path = cache_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def system_dir() -> Path:
    """$RH_LOCK_DIR, else /tmp/rollout-harness-locks: on every host (/run/lock is not, in containers; nor writable
    by users everywhere), writable by every user (made sticky and world-writable like /tmp), one per host."""
    return Path(os.environ.get("RH_LOCK_DIR") or "/tmp/rollout-harness-locks")


def _open_system(name: str) -> int:
    """A descriptor on system_dir()/name.lock, whoever created it. Read-only: flock needs no more, and another
    user's file (0644) opens so; no O_CREAT on an existing file, which fs.protected_regular refuses in a sticky
    directory for a file someone else owns."""
    d = system_dir()
    if not d.is_dir():
        with contextlib.suppress(FileExistsError):
            d.mkdir(parents=True)
            os.chmod(d, 0o777 | stat.S_ISVTX)  # made here: for every user, as /tmp
    path = d / f"{name}.lock"
    while True:
        with contextlib.suppress(FileNotFoundError):
            return os.open(path, os.O_RDONLY)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with contextlib.suppress(PermissionError):
                os.fchmod(fd, 0o644)  # whatever the umask: readable, so lockable, by every user
            return fd


@contextlib.contextmanager
def system_held(name: str, on_wait: Callable[[], None], give_up: Callable[[], None]) -> Iterator[None]:
    """Hold the host-wide lock `name` (system_dir()), blocking until it is free: on_wait() once if another process
    holds it, give_up() at each poll (raise there to stop waiting: a cancelled run). Not re-entrant."""
    fd = _open_system(name)
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    on_wait()
                waited = True
                give_up()
                time.sleep(POLL)
        yield
    finally:
        os.close(fd)


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
