"""The three load tools, each run once against a local probe app and turned into one typed result.

- run_ours: our generator through the path `rollout-harness run/compare` use: harness.loadworker.LoadProcess
  (a child process streaming JSONL records, on tmpfs when there is one), then the records file read back and
  summarised with harness.summary.Histogram.
- run_vegeta: `vegeta attack` at the same rate, duration and connection mode, then `vegeta report -type=json`.
- run_wrk: `wrk` once, for the probe app's own keepalive ceiling.

The reference tools of modes h2 and grpc (h2load, ghz) are in bench/reftools.py.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import resource
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentProblem
from harness.load import LoadResult, LoadSpec
from harness.loadworker import LoadProcess, Started
from harness.model import ConnMode
from harness.records import SKIPPED, read_records
from harness.summary import Histogram
from probe_app.local import LocalApp

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOOLS_DIR = Path(os.environ.get("RH_CACHE", Path.home() / ".cache" / "rollout-harness")) / "tools"
"""Where the benchmark's tools built from the Go module proxy (vegeta, ghz) are kept (bench/run.sh builds vegeta there)."""
STOP_GRACE = 1.0  # s after the schedule's end before the child's stdin is closed: it ends on its own unless >1 s late
_DEFAULTS = LoadSpec("http://127.0.0.1/")
VEGETA_TIMEOUT_S = math.ceil(_DEFAULTS.connect_timeout + _DEFAULTS.read_timeout)  # vegeta has one total timeout; ours has two


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, h: Histogram) -> Percentiles:
        return cls(1000 * h.percentile(50), 1000 * h.percentile(99), 1000 * h.max)


@dataclass(frozen=True)
class Point:
    """One tool at one connection mode and target rate."""

    tool: str
    """`ours` or `vegeta`."""
    mode: str
    """`new` (a TCP connection per request), `keepalive`, `h2` or `grpc` (harness.model.ConnMode)."""
    rate: int
    """Target requests per second."""
    scheduled: int
    """rate x seconds."""
    sent: int
    """Requests that went out (ours: every record but `skipped`)."""
    ok: int
    achieved_rate: float
    """sent / (last start - first start): vegeta's definition of its `rate`."""
    latency: Percentiles
    """Start to end of every sent request, failed ones included (as vegeta's are)."""
    cpu_seconds: float
    """ours: the child's LoadResult.cpu_seconds (its process time inside run_load); vegeta: the attack's rusage."""
    wall_seconds: float
    server_cpu_pct: float
    """The probe app's CPU during the run, in % of one core."""
    lateness: Percentiles | None = None
    """Actual start - scheduled start of each sent request; ours only (vegeta has no such figure)."""
    skipped: int | None = None
    """Requests the in-flight cap kept from being sent; ours only."""
    outcomes: Mapping[str, int] = field(default_factory=dict)
    """ours: records by kind; vegeta: responses by status code (0 = transport error)."""
    errors: tuple[str, ...] = ()
    """vegeta's distinct error strings."""
    process_cpu_seconds: float | None = None
    """ours: the whole child, interpreter start-up included (RUSAGE_CHILDREN)."""
    scheduling: str | None = None
    """ours: how the child was scheduled (loadworker.Started.scheduling)."""
    loadavg_1m: float = 0.0

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    @property
    def unsent(self) -> int:
        """Scheduled but neither sent nor skipped: the tool fell behind and the run ended first."""
        return max(self.scheduled - self.sent - (self.skipped or 0), 0)

    @property
    def cpu_ms_per_1k(self) -> float:
        return 1e6 * self.cpu_seconds / max(self.sent, 1)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"failed": self.failed, "unsent": self.unsent, "cpu_ms_per_1k": self.cpu_ms_per_1k}


@dataclass(frozen=True)
class Ceiling:
    """wrk's keepalive maximum against the probe app (wrk has no new-connection mode)."""

    connections: int
    requests: int
    requests_per_sec: float
    errors: int
    """Non-2xx/3xx responses plus socket errors."""
    cpu_seconds: float
    server_cpu_pct: float
    output: str


def process_cpu(pid: int) -> float:
    """utime + stime of a live process, from /proc (the probe app is reaped only at the end)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / CLK_TCK


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


# --------------------------------------------------------------------------- ours


async def _drive(spec: LoadSpec, records: Path) -> tuple[Started, LoadResult]:
    proc = LoadProcess(spec, records)
    try:
        started = await proc.start()
        await asyncio.sleep(started.t0_mono + spec.duration + STOP_GRACE - time.monotonic())
        return started, await proc.finish(timeout=spec.connect_timeout + spec.read_timeout + 30)
    finally:
        proc.kill()  # only if it is still running (start or finish failed)


def run_ours(app: LocalApp, mode: str, rate: int, seconds: float) -> Point:
    """Modes h2 and grpc go to the app's H2_PORT and GRPC_PORT (it must have been started with them)."""
    conn = ConnMode(mode)
    url = app.h2_url if conn is ConnMode.H2 else app.grpc_url if conn is ConnMode.GRPC else app.url
    spec = LoadSpec(url=url, rate=rate, duration=seconds, mode=conn)
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # as harness.cell: no disk writeback stalls
    with tempfile.TemporaryDirectory(prefix="bench-records-", dir=shm) as tmp:
        path = Path(tmp) / "records.jsonl"
        c0, s0 = children_cpu(), process_cpu(app.proc.pid)
        started, result = asyncio.run(_drive(spec, path))
        child_cpu, server_cpu = children_cpu() - c0, process_cpu(app.proc.pid) - s0
        kinds: Counter[str] = Counter()
        lateness, latency = Histogram(), Histogram()
        first, last = math.inf, -math.inf
        for rec in read_records(path):
            kinds[rec.kind] += 1
            if rec.kind != SKIPPED:
                lateness.add(max(rec.lateness, 0.0))
                latency.add(rec.latency)
                first, last = min(first, rec.start), max(last, rec.start)
    sent = kinds.total() - kinds[SKIPPED]
    return Point(
        tool="ours",
        mode=mode,
        rate=rate,
        scheduled=spec.total(),
        sent=sent,
        ok=kinds["ok"],
        achieved_rate=sent / (last - first) if last > first else 0.0,
        latency=Percentiles.of(latency),
        cpu_seconds=result.cpu_seconds,
        wall_seconds=result.wall_seconds,
        server_cpu_pct=100 * server_cpu / max(result.wall_seconds, 1e-9),
        lateness=Percentiles.of(lateness),
        skipped=kinds[SKIPPED],
        outcomes=dict(sorted(kinds.items())),
        process_cpu_seconds=child_cpu,
        scheduling=started.scheduling,
        loadavg_1m=os.getloadavg()[0],
    )


# --------------------------------------------------------------------------- vegeta and wrk


def run_tool(cmd: list[str], timeout: float) -> tuple[str, float, float]:
    """Run to completion; return stdout, its CPU seconds (RUSAGE_CHILDREN delta) and wall seconds."""
    c0, w0 = children_cpu(), time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise EnvironmentProblem(f"{' '.join(cmd[:2])} failed (exit {res.returncode}): {res.stderr[-2000:]}")
    return res.stdout, children_cpu() - c0, time.monotonic() - w0


def run_vegeta(vegeta: str, app: LocalApp, mode: str, rate: int, seconds: float, max_workers: int) -> Point:
    with tempfile.TemporaryDirectory(prefix="bench-vegeta-") as tmp:
        targets, results = Path(tmp) / "targets.txt", Path(tmp) / "results.bin"
        targets.write_text(f"GET {app.url}\n")
        cmd = [
            vegeta,
            "attack",
            f"-rate={rate}/s",
            f"-duration={seconds:g}s",
            f"-keepalive={'true' if mode == 'keepalive' else 'false'}",
            f"-max-workers={max_workers}",
            f"-timeout={VEGETA_TIMEOUT_S}s",
            "-http2=false",
            f"-targets={targets}",
            f"-output={results}",
        ]
        s0 = process_cpu(app.proc.pid)
        _, cpu, wall = run_tool(cmd, timeout=seconds + 60)
        server_cpu = process_cpu(app.proc.pid) - s0
        report = json.loads(run_tool([vegeta, "report", "-type=json", str(results)], timeout=120)[0])
    n = int(report["requests"])
    lat = report["latencies"]
    return Point(
        tool="vegeta",
        mode=mode,
        rate=rate,
        scheduled=int(rate * seconds),
        sent=n,
        ok=round(float(report["success"]) * n),
        achieved_rate=float(report["rate"]),
        latency=Percentiles(lat["50th"] / 1e6, lat["99th"] / 1e6, lat["max"] / 1e6),
        cpu_seconds=cpu,
        wall_seconds=wall,
        server_cpu_pct=100 * server_cpu / max(wall, 1e-9),
        outcomes={str(k): int(v) for k, v in sorted(report["status_codes"].items())},
        errors=tuple(report.get("errors") or ()),
        loadavg_1m=os.getloadavg()[0],
    )


def run_wrk(wrk: str, app: LocalApp, seconds: float, connections: int) -> Ceiling:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", app.url]
    s0 = process_cpu(app.proc.pid)
    text, cpu, wall = run_tool(cmd, timeout=seconds + 60)
    server_cpu = process_cpu(app.proc.pid) - s0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return Ceiling(
        connections=connections,
        requests=int(total.group(1)) if total else 0,
        requests_per_sec=float(rps.group(1)) if rps else 0.0,
        errors=(int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0),
        cpu_seconds=cpu,
        server_cpu_pct=100 * server_cpu / max(wall, 1e-9),
        output=text,
    )
