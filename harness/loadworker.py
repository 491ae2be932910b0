"""Run the load generator in its own process, so Kubernetes watches and API calls in the parent (which hold
the GIL while they deserialize) cannot delay request start times. Records stream to a JSONL file; closing
the child's stdin asks it to stop; its LoadResult comes back as one JSON line on stdout.

Child:  python -m harness.loadworker SPEC_JSON RECORDS_PATH
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from harness.errors import HarnessError
from harness.load import ConnMode, LoadResult, LoadSpec, run_load
from harness.records import RecordWriter


class LoadProcess:
    """Parent side: start(), then stop() and result()."""

    def __init__(self, spec: LoadSpec, records: Path) -> None:
        self.spec = spec
        self.records = records
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        doc = json.dumps(asdict(self.spec) | {"mode": self.spec.mode.value})
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "harness.loadworker",
            doc,
            str(self.records),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )

    async def finish(self, timeout: float = 30.0) -> LoadResult:
        """Ask the child to stop (close stdin) and wait for its result."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise HarnessError("load process was not started")
        if not proc.stdin.is_closing():
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


async def _child(spec: LoadSpec, records: Path) -> LoadResult:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_stdin, name="stdin-eof", daemon=True).start()
    writer = RecordWriter(records)
    try:
        return await run_load(spec, writer.write, stop)
    finally:
        writer.close()


def main() -> None:
    with contextlib.suppress(OSError):  # the generator shares 2 cores with the cluster: let it preempt
        os.nice(-10)
    raw = json.loads(sys.argv[1])
    spec = LoadSpec(**(raw | {"mode": ConnMode(raw["mode"])}))
    result = asyncio.run(_child(spec, Path(sys.argv[2])))
    sys.stdout.write(json.dumps(asdict(result)) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
