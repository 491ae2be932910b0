"""The reference load tools of modes h2 and grpc, each run once against the local probe app as one bench.tools.Point:
h2load (Debian's nghttp2-client) for h2, ghz (built from the Go module proxy) for grpc. Both send at a fixed total
rate, open loop, over as many connections as ours (LoadSpec.mux_connections), and both give every request's start
and latency, from which the Point's figures are computed as they are for ours (harness.summary.Histogram):

- h2load -c N -m M --rps R/N -D S --log-file F: N clients, one connection each, each starting R/N requests a second
  with at most M streams open (M = LoadSpec.max_in_flight / N, the probe app's MAX_CONCURRENT_STREAMS). F has one line
  per finished request: start (microseconds since the epoch), status, microseconds to the end of the response.
  Requests still open when -D ends are dropped (they count as unsent).
- ghz --async --rps R -z S --connections N -c N --duration-stop wait -O json: calls are started on the rate's ticks
  without waiting for earlier ones; the JSON's `details` hold every call's end time, latency and status.

ghz decodes each answer with the .proto it is given, and the probe app answers gRPC's Get with plain bytes,
`POD\\nVERSION\\nipv4:127.0.0.1:PORT` (probe_app.grpcapp). grpc_pod_name() names the pod so that those bytes are also
one protobuf message, a `Reply` whose field REPLY_FIELD holds everything after its first two bytes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.tools import TOOLS_DIR, Percentiles, Point, process_cpu, run_tool
from harness.errors import EnvironmentProblem
from harness.load import LoadSpec
from harness.summary import Histogram
from probe_app.grpcapp import METHOD
from probe_app.local import LocalApp

GHZ_MODULE, GHZ_VERSION = "github.com/bojand/ghz", "v0.120.0"  # pinned; builds with go1.26 (GOTOOLCHAIN=local)
GHZ_BUILD_TIMEOUT = 1200.0
REPLY_FIELD = 10
"""The field of ghz's Reply that holds the probe app's answer after its first two bytes."""
PEER_PREFIX = "ipv4:127.0.0.1:"
"""How the probe app names a loopback client before its port."""
_DEFAULTS = LoadSpec("http://127.0.0.1/")


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Sample:
    """One request a reference tool reports."""

    start: float
    """Seconds since the epoch."""
    latency: float
    """Seconds from its start to the end of its answer."""
    outcome: str
    """h2load: the HTTP status; ghz: the gRPC status name."""
    ok: bool


# --------------------------------------------------------------------------- installing


def h2load_binary() -> str:
    """h2load on PATH; installed with apt-get (root only) when missing."""
    if found := shutil.which("h2load"):
        return found
    if os.geteuid() != 0:
        raise EnvironmentProblem("h2load not found: install Debian's nghttp2-client (apt-get install -y nghttp2-client)")
    say("h2load not found: installing nghttp2-client with apt-get")
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "nghttp2-client"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False, env=env)
        if res.returncode != 0:
            raise EnvironmentProblem(f"{' '.join(cmd)} failed (exit {res.returncode}): {res.stderr.strip()[-500:]}")
    return shutil.which("h2load") or "h2load"


def built_version(exe: Path, module: str) -> str | None:
    """The version of `module` a Go binary was built from (`go version -m`), None if unknown."""
    if not exe.is_file() or not shutil.which("go"):
        return None
    res = subprocess.run(["go", "version", "-m", str(exe)], capture_output=True, text=True, timeout=30, check=False)
    found = re.search(rf"^\s*mod\s+{re.escape(module)}\s+(\S+)", res.stdout, re.M)
    return found.group(1) if found else None


def ghz_binary(tools_dir: Path = TOOLS_DIR) -> str:
    """ghz GHZ_VERSION in tools_dir, built there with the local Go from the Go module proxy when missing."""
    exe = tools_dir / "ghz"
    if built_version(exe, GHZ_MODULE) == GHZ_VERSION:
        return str(exe)
    if not shutil.which("go"):
        raise EnvironmentProblem(f"ghz not found at {exe} and no Go toolchain to build it with (Go >= 1.21 is needed)")
    tools_dir.mkdir(parents=True, exist_ok=True)
    log = tools_dir / "ghz-build.log"
    say(f"building ghz {GHZ_VERSION} into {tools_dir} (a few minutes the first time; log: {log})")
    env = os.environ | {"GOBIN": str(tools_dir), "GOTOOLCHAIN": "local", "GOFLAGS": "-modcacherw", "CGO_ENABLED": "0"}
    with log.open("w") as fh:
        cmd = ["go", "install", f"{GHZ_MODULE}/cmd/ghz@{GHZ_VERSION}"]
        try:
            code = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=GHZ_BUILD_TIMEOUT, check=False, env=env).returncode
        except subprocess.TimeoutExpired:
            code = -1
    if code != 0 or not exe.is_file():
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        raise EnvironmentProblem(f"building ghz {GHZ_VERSION} failed (exit {code}; {log}): {tail}")
    say(f"built {exe}")
    return str(exe)


# --------------------------------------------------------------------------- the gRPC answer as protobuf


def port_digits(port_range: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """How many digits every client port has (the kernel picks them from this range)."""
    low, high = port_range.read_text().split()
    if len(low) != len(high):
        raise EnvironmentProblem(
            f"ghz: client ports {low}-{high} (net.ipv4.ip_local_port_range) differ in length, so the probe app's gRPC "
            "answer, which ends with the client's port, has no fixed length for ghz to decode (bench/reftools.py)"
        )
    return len(low)


def grpc_pod_name(version: str, digits: int, rest: str = "bench-grpc-ref") -> str:
    """A pod name that makes the answer `POD\\nVERSION\\nipv4:127.0.0.1:PORT` (PORT: `digits` digits) one protobuf
    message: the tag of field REPLY_FIELD with wire type 2 (length-delimited), then the length of all that follows as
    one byte (a varint below 128, printable so the name stays ASCII), then `rest`."""
    length = len(rest) + 1 + len(version) + 1 + len(PEER_PREFIX) + digits
    if not 32 <= length < 127:
        raise ValueError(f"answer of {length} bytes after the pod name's first two: pick another `rest`")
    return chr(REPLY_FIELD << 3 | 2) + chr(length) + rest


def grpc_proto() -> tuple[str, str]:
    """The .proto text for ghz and its --call name, both from probe_app.grpcapp.METHOD (`/probe.Probe/Get`)."""
    service, method = METHOD.decode().strip("/").split("/")
    package, name = service.rsplit(".", 1)
    proto = (
        'syntax = "proto3";\n'
        f"package {package};\n"
        "message Request {}\n"
        f"message Reply {{ bytes rest = {REPLY_FIELD}; }}  // see bench/reftools.py: grpc_pod_name\n"
        f"service {name} {{ rpc {method}(Request) returns (Reply); }}\n"
    )
    return proto, f"{service}.{method}"


# --------------------------------------------------------------------------- parsing their output


def h2load_counts(stdout: str) -> dict[str, int]:
    """h2load's `requests:` line: total, started, done, succeeded, failed, errored, timeout."""
    found = re.search(
        r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", stdout, re.M
    )
    if not found:
        raise EnvironmentProblem(f"h2load printed no `requests:` line: {stdout.strip()[-500:]}")
    return dict(zip(("total", "started", "done", "succeeded", "failed", "errored", "timeout"), map(int, found.groups()), strict=True))


def h2load_samples(log: str) -> list[Sample]:
    """h2load's --log-file: `start_us<TAB>status<TAB>latency_us` per finished request (status -1: no answer)."""
    out = []
    for line in log.splitlines():
        if line.strip():
            start, status, latency = line.split("\t")
            out.append(Sample(int(start) / 1e6, int(latency) / 1e6, status, 200 <= int(status) < 400))
    return out


_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def epoch(stamp: str) -> float:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds (Go's time.Time in JSON)."""
    found = _RFC3339.fullmatch(stamp)
    if not found:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    whole, frac, zone = found.groups()
    return datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp() + float(f"0.{frac or 0}")


def ghz_samples(report: Mapping[str, Any]) -> tuple[list[Sample], tuple[str, ...]]:
    """ghz's JSON report: one Sample per entry of `details` (its timestamp is the call's end) and the error strings."""
    out = []
    for d in report.get("details") or ():
        latency = int(d["latency"]) / 1e9
        status = d.get("status") or "Unknown"
        out.append(Sample(epoch(d["timestamp"]) - latency, latency, status, status == "OK"))
    return out, tuple(sorted(report.get("errorDistribution") or {}))


@dataclass(frozen=True)
class Measured:
    """What run_tool and /proc measured around one reference tool's run."""

    cpu_seconds: float
    """The tool's process, from start to exit (RUSAGE_CHILDREN)."""
    wall_seconds: float
    server_cpu_seconds: float
    """The probe app's, over the same time."""


def point(tool: str, mode: str, rate: int, seconds: float, samples: Sequence[Sample], m: Measured, errors: tuple[str, ...]) -> Point:
    """A Point from a reference tool's samples, with the definitions of bench.tools.Point."""
    latency = Histogram()
    for s in samples:
        latency.add(s.latency)
    starts = [s.start for s in samples]
    span = max(starts) - min(starts) if starts else 0.0
    return Point(
        tool=tool,
        mode=mode,
        rate=rate,
        scheduled=int(rate * seconds),
        sent=len(samples),
        ok=sum(s.ok for s in samples),
        achieved_rate=len(samples) / span if span > 0 else 0.0,
        latency=Percentiles.of(latency),
        cpu_seconds=m.cpu_seconds,
        wall_seconds=m.wall_seconds,
        server_cpu_pct=100 * m.server_cpu_seconds / max(m.wall_seconds, 1e-9),
        outcomes=dict(sorted(Counter(s.outcome for s in samples).items())),
        errors=errors,
        loadavg_1m=os.getloadavg()[0],
    )


def measure(cmd: list[str], app: LocalApp, seconds: float) -> tuple[str, Measured]:
    """Run a tool to its end (bounded: its duration + 60 s): its stdout and what it cost."""
    s0 = process_cpu(app.proc.pid)
    out, cpu, wall = run_tool(cmd, timeout=seconds + 60)
    return out, Measured(cpu, wall, process_cpu(app.proc.pid) - s0)


# --------------------------------------------------------------------------- running them


def run_h2load(exe: str, app: LocalApp, rate: int, seconds: float, connections: int = _DEFAULTS.mux_connections) -> Point:
    streams = _DEFAULTS.max_in_flight // connections
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
        log = Path(tmp) / "requests.tsv"
        cmd = [exe, f"-c{connections}", f"-m{streams}", f"--rps={rate / connections:g}", f"-D{round(seconds * 1000)}ms"]
        out, measured = measure([*cmd, f"--log-file={log}", app.h2_url], app, seconds)
        samples = h2load_samples(log.read_text())
    counts = h2load_counts(out)
    notes = [f"{counts['started'] - counts['done']} still open when -D ended"] if counts["started"] > counts["done"] else []
    if counts["done"] != len(samples):
        notes.append(f"{counts['done']} requests done but {len(samples)} in its log (the log's are counted)")
    return point("h2load", "h2", rate, seconds, samples, measured, tuple(notes))


def run_ghz(exe: str, app: LocalApp, rate: int, seconds: float, connections: int = _DEFAULTS.mux_connections) -> Point:
    """The app must have been started with POD_NAME=grpc_pod_name(VERSION, port_digits())."""
    proto, call = grpc_proto()
    with tempfile.TemporaryDirectory(prefix="bench-ghz-") as tmp:
        (Path(tmp) / "probe.proto").write_text(proto)
        cmd = [exe, "--insecure", f"--proto={Path(tmp) / 'probe.proto'}", f"--call={call}", "--data={}", "--async"]
        cmd += [f"--rps={rate}", f"--duration={round(seconds * 1000)}ms", "--duration-stop=wait", f"--connections={connections}"]
        cmd += [f"--concurrency={connections}", f"--timeout={round(1000 * _DEFAULTS.read_timeout)}ms", "--format=json"]
        out, measured = measure([*cmd, f"127.0.0.1:{app.env['GRPC_PORT']}"], app, seconds)
    samples, errors = ghz_samples(json.loads(out))
    return point("ghz", "grpc", rate, seconds, samples, measured, errors)
