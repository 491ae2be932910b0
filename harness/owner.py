"""Which harness process made something that outlives it on a cluster (a namespace, a cordon, a node's freeze), and
whether that process is gone: a later run undoes only what processes that are demonstrably dead left behind.

An owner is written as `HOST PID START BOOT PIDNS`: the host's name (for people reading it), the process id, its start
time (clock ticks after boot, from /proc/PID/stat), the kernel's boot id and the inode of the process's pid namespace.
A pid alone is reused, and two containers may share a host name while each counts its own pids; boot, pid namespace,
pid and start time together name one process for good.

The rule (`gone`): an owner is gone when it shares this process's boot and pid namespace and no process with its pid
and start time runs. Anything else is not ours to judge and is left alone: another machine or boot, another
container's pids, a process we may not see, or an owner in the older `HOST PID` form.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

PROC = Path("/proc")


def _start(pid: int) -> str:
    """The start time of process `pid` (clock ticks after boot); FileNotFoundError when there is no such process."""
    stat = (PROC / str(pid) / "stat").read_text()
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the command name before it may hold spaces and ')'


def _here() -> tuple[str, str] | None:
    """This kernel's boot id and this process's pid namespace, or None where /proc does not tell them."""
    try:
        boot = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        pidns = os.readlink(PROC / "self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return None
    return (boot, pidns) if boot and pidns else None


def of(pid: int) -> str:
    """Process `pid` of this host, boot and pid namespace as an owner (see the module's docstring)."""
    try:
        start = _start(pid)
    except (OSError, IndexError):
        start = "?"
    boot, pidns = _here() or ("?", "?")
    return f"{socket.gethostname()} {pid} {start} {boot} {pidns}"


@functools.cache
def me() -> str:
    """This process as an owner."""
    return of(os.getpid())


def gone(owner: str) -> bool:
    """Whether the process `owner` names has demonstrably ended (see the module's docstring for the rule)."""
    parts = owner.split()
    here = _here()
    if len(parts) != 5 or here is None or not parts[1].isdigit() or "?" in parts or tuple(parts[3:]) != here:
        return False
    pid, start = int(parts[1]), parts[2]
    try:
        return _start(pid) != start  # another start time: the pid was reused
    except FileNotFoundError:
        pass
    except (OSError, IndexError):
        return False
    try:  # no /proc entry: gone, unless /proc hides other users' processes (hidepid) and it runs
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def token() -> str:
    """This process as `PID.START`, for names on this host (a /dev/shm directory) that must say who made them."""
    parts = me().split()
    return f"{parts[1]}.{parts[2]}"


def token_gone(tok: str) -> bool:
    """Whether the process a `token()` names has demonstrably ended (on this host and boot: /dev/shm is emptied at
    boot); False for anything that is not a token."""
    pid, _, start = tok.partition(".")
    here = _here()
    if not pid.isdigit() or not start.isdigit() or here is None:
        return False
    return gone(f"{socket.gethostname()} {pid} {start} {here[0]} {here[1]}")
