"""Run the load generator in its own process, so Kubernetes watches and API calls in the parent (which hold
the GIL while they deserialize) cannot delay request start times. Records stream to a JSONL file.

Protocol: the child starts (imports, priority, file limit) and waits for a line `go` on stdin, so the parent can
spawn it while the pods start; then it prints one JSON line `{"t0_mono": ..., "scheduling": ...}` when its
schedule starts (the parent times its baseline from there, not from the spawn), streams records, and prints its
LoadResult as one JSON line on stdout when it ends; closing its stdin asks it to stop (before `go`: to exit).

Child:  python -m harness.loadworker SPEC_JSON RECORDS_PATH
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.load import LoadResult, LoadSpec, run_load
from harness.model import ConnMode, Discovery
from harness.records import RecordWriter

CLOCK_TOLERANCE = 1.0  # s: the announcement's own delay; different kernels' monotonic clocks differ by far more
FD_MARGIN = 64  # descriptors kept free for the event loop, the records file and stdio


@dataclass(frozen=True)
class Started:
    t0_mono: float
    """CLOCK_MONOTONIC time of the schedule's t0."""
    scheduling: str
    """How the child is scheduled: `rr` (real-time round robin, preempts the cluster) or `nice` (niceness -10)."""
    max_in_flight: int
    """The in-flight cap after clamping it below the file-descriptor limit."""
    now_mono: float = 0.0
    """The child's CLOCK_MONOTONIC when it announced itself (checks that parent and child share the clock)."""
    dns_keep: float = 0.0
    """Seconds the client may still call a gone pod: with discovery dns the time it keeps an answer (its TTL or the
    fixed cache time), with registry the registry's expiry + the fetch interval; else 0."""


class LoadProcess:
    """Parent side: `await start()` (returns once the schedule has started), then `await finish()`."""

    def __init__(self, spec: LoadSpec, records: Path | str, prefix: tuple[str, ...] = ()) -> None:
        """prefix: run the child through it (e.g. `kubectl exec -i POD --`, where `python3` is the interpreter and
        records is a path in the pod)."""
        self.spec = spec
        self.records = records
        self.prefix = prefix
        self._proc: asyncio.subprocess.Process | None = None

    def command(self) -> list[str]:
        """The child's command line (e.g. to run it inside a network namespace with `ip netns exec NS ...`)."""
        doc = json.dumps(asdict(self.spec) | {"mode": self.spec.mode.value, "discovery": self.spec.discovery.value})
        return [*self.prefix, "python3" if self.prefix else sys.executable, "-m", "harness.loadworker", doc, str(self.records)]

    async def spawn(self) -> None:
        """Start the child ahead of its schedule (start() does it if this was not called): it gets ready and waits."""
        if self._proc is None:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )

    async def start(self, timeout: float = 30.0) -> Started:
        """Let the child's schedule start; returns once it has."""
        await self.spawn()
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                self._proc.stdin.write(b"go\n")
                await self._proc.stdin.drain()
                line = await self._proc.stdout.readline()
        except TimeoutError:
            self.kill()
            raise HarnessError(f"the load process did not start within {timeout:.0f}s") from None
        except (BrokenPipeError, ConnectionResetError):
            line = b""  # it exited before reading `go`
        if not line.strip():
            await self._proc.wait()
            raise HarnessError(f"the load process failed to start (exit {self._proc.returncode})")
        started = Started(**json.loads(line))
        if abs(time.monotonic() - started.now_mono) > CLOCK_TOLERANCE:
            self.kill()
            raise HarnessError("the load process runs on another kernel (its monotonic clock differs): its times cannot be aligned")
        return started

    async def finish(self, timeout: float = 30.0, stop: bool = True) -> LoadResult:
        """Wait for the child's result; with stop (the default) ask it to stop first by closing its stdin, else let
        it run to the end of its schedule (timeout then counts from the call)."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise HarnessError("load process was not started")
        if stop and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            async with asyncio.timeout(timeout):
                out = await proc.stdout.read()
                await proc.wait()
        except TimeoutError:
            proc.kill()
            raise HarnessError(f"the load process did not stop within {timeout:.0f}s") from None
        if proc.returncode != 0 or not out.strip():
            raise HarnessError(f"the load process failed (exit {proc.returncode})")
        return LoadResult(**json.loads(out.decode().strip().splitlines()[-1]))

    def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()


def _prioritise() -> str:
    """Let the generator preempt the cluster on a 2-core machine: real-time round robin at the lowest RT priority
    when allowed (root), else niceness -10, else nothing. The kernel's RT throttling (95 % per second by default)
    keeps a runaway generator from locking the machine."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
        return "rr"
    with contextlib.suppress(OSError):
        os.nice(-10)
        return "nice"
    return "default"


def _raise_fd_limit(max_in_flight: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the in-flight cap clamped below it, so the generator
    skips a request (visible) rather than failing it with EMFILE (a client error mistaken for loss)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, min(max_in_flight, soft - FD_MARGIN))


async def _child(spec: LoadSpec, records: Path, scheduling: str) -> LoadResult:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    def announce(t0_mono: float, dns_keep: float) -> None:
        started = Started(t0_mono, scheduling, spec.max_in_flight, time.monotonic(), dns_keep)
        sys.stdout.write(json.dumps(asdict(started)) + "\n")
        sys.stdout.flush()

    threading.Thread(target=wait_stdin, name="stdin-eof", daemon=True).start()
    writer = RecordWriter(records)
    try:
        return await run_load(spec, writer.write, stop, on_start=announce)
    finally:
        writer.close()


def main() -> None:
    scheduling = _prioritise()
    raw = json.loads(sys.argv[1])
    spec = LoadSpec(**(raw | {"mode": ConnMode(raw["mode"]), "discovery": Discovery(raw["discovery"])}))
    spec = replace(spec, max_in_flight=_raise_fd_limit(spec.max_in_flight))
    if sys.stdin.buffer.readline().strip() != b"go":  # the parent gave up before the schedule
        os._exit(0)
    try:
        result = asyncio.run(_child(spec, Path(sys.argv[2]), scheduling))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent reports it
        os._exit(130)
    except HarnessError as e:
        print(f"rollout-harness load worker: error: {e}", file=sys.stderr)
        os._exit(2)
    except BrokenPipeError:  # the parent is gone (killed): nobody to tell
        os._exit(0)
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.write(json.dumps(asdict(result)) + "\n")
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
