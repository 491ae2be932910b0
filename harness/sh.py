"""The one way the harness runs a command (docker, kind, kubectl, iptables, the bundled scripts): under a timeout,
its exit code checked, its stderr relayed to the log, and a failure turned into one line that names the command.

A command still running at its timeout is stopped with everything it started: SIGTERM (so a script's EXIT trap
can clean up), SIGKILL after a grace period. Each command runs in its own process group, so a Ctrl-C in the
terminal reaches the harness alone: the harness decides what stops. A command started inside cancellable() (a long
step: a build, `kind create`) is stopped the same way within a moment of cancel_running() (the first Ctrl-C or
SIGTERM: harness.cli), and its caller gets Cancelled; any other command (a clean-up step) runs on to its end.
kill_all() SIGKILLs whatever still runs (a forced exit, so nothing is orphaned).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Generic, TypeVar

from harness.errors import ClusterError, CommandFailed, EnvironmentProblem

log = logging.getLogger("harness.sh")
T = TypeVar("T")

_GRACE_S = 5.0  # between SIGTERM and SIGKILL of a timed-out or cancelled command
_TAIL = 15  # stderr lines kept to explain a failure
_POLL_S = 0.2  # how often a cancellable command's wait looks for a cancellation


class Cancelled(BaseException):
    """A cancellable command was stopped (or not started) because the run was cancelled. A BaseException, as
    asyncio.CancelledError: no `except Exception` on the way up mistakes it for a failure to work around."""


class _Scope:
    def __init__(self) -> None:
        self.cancelled = False


_lock = threading.Lock()  # guards _scopes, _live and a scope's flag against a command starting
_scopes: set[_Scope] = set()
_live: set[subprocess.Popen[str]] = set()
_local = threading.local()  # .scope: the cancellable() scope of this thread, if any


@contextlib.contextmanager
def cancellable() -> Iterator[None]:
    """The commands this thread runs inside are stopped by cancel_running(); once cancelled, the next one raises
    Cancelled instead of starting (as does raise_if_cancelled())."""
    scope, outer = _Scope(), getattr(_local, "scope", None)
    with _lock:
        _scopes.add(scope)
    _local.scope = scope
    try:
        yield
    finally:
        _local.scope = outer
        with _lock:
            _scopes.discard(scope)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Inside a cancellable() block: commands that must run to their end all the same (clean-up)."""
    outer = getattr(_local, "scope", None)
    _local.scope = None
    try:
        yield
    finally:
        _local.scope = outer


def cancel_running() -> None:
    """Cancel every cancellable() block now open, in any thread: their running commands are stopped (SIGTERM, then
    SIGKILL after a grace period) by the threads waiting for them, within _POLL_S. Returns at once."""
    with _lock:
        for scope in _scopes:
            scope.cancelled = True


class Beside(Generic[T]):
    """A function run in a thread of its own beside the caller's work (a build step that needs none of it), its
    commands in a cancellable() scope of their own: stopped by cancel_running() as the caller's are, or alone
    (stop()). wait() returns its result or raises its exception."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self._scope = _Scope()
        self._fn = fn
        self._result: list[T] = []
        self._error: BaseException | None = None
        with _lock:
            _scopes.add(self._scope)
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        _local.scope = self._scope
        try:
            self._result.append(self._fn())
        except BaseException as e:  # handed to wait()
            self._error = e
        finally:
            with _lock:
                _scopes.discard(self._scope)

    def stop(self) -> None:
        """Stop its running command (SIGTERM, then SIGKILL) and start no other; returns once it has ended."""
        self._scope.cancelled = True
        self._thread.join()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result[0]


def together(*works: Beside[object]) -> None:
    """Wait for all of them; the first that fails stops the others (as does an interruption of this wait), and its
    error is raised."""
    try:
        pending = list(works)
        while pending:
            for w in [w for w in pending if not w.running()]:
                pending.remove(w)
                w.wait()  # raises what it raised
            time.sleep(_POLL_S)
    finally:
        for w in works:
            w.stop()  # a no-op for one that has ended


def raise_if_cancelled() -> None:
    """Cancelled, if this thread's cancellable() block was cancelled (for a wait between commands)."""
    scope = getattr(_local, "scope", None)
    if scope is not None and scope.cancelled:
        raise Cancelled("cancelled")


def kill_all() -> None:
    """SIGKILL every command still running, with its process group (a forced exit: nothing left behind)."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGKILL)


def run(args: Sequence[str], *, timeout: float, check: bool = True, what: str = "", env: Mapping[str, str] | None = None) -> str:
    """Run a command and return its stdout.

    check=True: a non-zero exit raises CommandFailed, "<what> failed (exit N): <why>", where why is the last
    `error:` line of its stderr, else its last line. check=False, for a command that may fail: its stdout whatever
    the exit. Either way a missing command raises EnvironmentProblem, and one still running after `timeout` seconds
    ClusterError. what: how messages name the command (default: its program and first two arguments). env: added
    to this process's environment. Stderr goes to the log, at INFO the lines of a checked command that report
    progress (`[step] ...`) or an error (`error: ...`), the rest at DEBUG.
    """
    what = what or _name(args)
    code, out, tail = _exec(args, what, timeout, env, logging.INFO if check else logging.DEBUG)
    if check and code != 0:
        why = next((t for t in reversed(tail) if t.startswith("error:")), tail[-1] if tail else "")
        raise CommandFailed(f"{what} failed (exit {code})" + (f": {why}" if why else ""), code, why)
    return out


def ok(args: Sequence[str], *, timeout: float) -> bool:
    """True when the command exits 0: a probe (is this image there, this rule installed, the daemon up?)."""
    return _exec(args, _name(args), timeout, None, logging.DEBUG)[0] == 0


def _name(args: Sequence[str]) -> str:
    return " ".join([Path(args[0]).name, *args[1:3]])


def _exec(args: Sequence[str], what: str, timeout: float, env: Mapping[str, str] | None, level: int) -> tuple[int, str, list[str]]:
    """(exit code, stdout, the last lines of stderr)."""
    log.debug("$ %s", " ".join(args))
    scope: _Scope | None = getattr(_local, "scope", None)
    with _lock:  # a cancellation either comes before (not started) or sees the command in _live
        if scope is not None and scope.cancelled:
            raise Cancelled(f"{what}: not started, cancelled")
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
                process_group=0,
            )
        except FileNotFoundError as e:
            raise EnvironmentProblem(f"{what}: {args[0]} not found") from e
        _live.add(proc)
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    tail: deque[str] = deque(maxlen=_TAIL)
    readers = [
        threading.Thread(target=_collect, args=(proc.stdout, out), name=f"{what}: stdout", daemon=True),
        threading.Thread(target=_relay, args=(proc.stderr, tail, level), name=f"{what}: stderr", daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        code = _wait(proc, timeout, scope)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise ClusterError(f"{what}: timed out after {timeout:.0f}s") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        with _lock:
            _live.discard(proc)
        for t in readers:
            t.join(_GRACE_S)  # a daemon the child left behind may hold the pipes open: do not wait for it
        if not any(t.is_alive() for t in readers):
            proc.stdout.close()
            proc.stderr.close()
    return code, "".join(out), list(tail)  # copies: a reader left running (see above) may still append


def _wait(proc: subprocess.Popen[str], timeout: float, scope: _Scope | None) -> int:
    """The exit code; TimeoutExpired after `timeout` s, Cancelled (the command not yet stopped) once `scope` is."""
    if scope is None:
        return proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while True:
        if scope.cancelled:
            raise Cancelled("cancelled")
        left = deadline - time.monotonic()
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            return proc.wait(min(left, _POLL_S))


def _collect(stream: IO[str], out: list[str]) -> None:
    out.append(stream.read())


def _relay(stream: IO[str], tail: deque[str], level: int) -> None:
    for raw in stream:
        line = raw.rstrip()
        log.log(level if line.startswith(("[", "error:")) else logging.DEBUG, "%s", line)
        tail.append(line)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the child and everything it started, SIGKILL them after a grace period, reap the child. The tree is
    read before any signal: orphans are re-parented and lost from view."""
    tree = [proc.pid, *_descendants(proc.pid)]
    _signal_group(proc.pid, signal.SIGTERM)  # its group: what it started, even what left the tree
    _signal(tree, signal.SIGTERM)  # the tree: what started a group of its own
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_GRACE_S)
    _signal_group(proc.pid, signal.SIGKILL)
    _signal(tree, signal.SIGKILL)
    proc.wait()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
