"""Benchmark harness.load.run_load against vegeta (and wrk for the server's ceiling) on loopback.

Not a test: it prints markdown tables and pass/fail against the goals, writes bench/results/latest.json,
and exits 0 unless the benchmark itself could not run (a missed goal is reported, not raised).

Per point (mode x rate): our generator runs in a fresh subprocess (so its CPU is the generator's alone),
then vegeta at the same rate and duration, both against one probe_app process started here.
wrk runs once first for the probe app's own keepalive ceiling. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
APP = ROOT / "probe_app" / "app.py"
DEFAULT_VEGETA = Path(os.environ.get("RH_CACHE", Path.home() / ".cache" / "rollout-harness")) / "tools" / "vegeta"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Goals (printed pass/fail).
LATENESS_P99_MS = 2.0  # p99 start lateness, ours, at rates <= LATENESS_MAX_RATE, both modes
LATENESS_MAX_RATE = 2000
SUSTAIN_RATE = 4000  # keepalive, ours
SUSTAIN_MIN_FRACTION = 0.99  # achieved >= 99 % of target ...
SUSTAIN_MAX_BAD_FRACTION = 0.001  # ... at most 0.1 % failed or skipped ...
SUSTAIN_LATENESS_P99_MS = 10.0  # ... and not falling behind its schedule
CPU_RATIO_MAX = 2.0  # ours / vegeta CPU per request, same mode and rate
SERVER_BOUND_PCT = 90.0  # probe_app CPU (% of one core) above which it is probably the bottleneck


# --------------------------------------------------------------------------- worker (our generator)


def _pct(sorted_vals: array[float] | list[float], p: float) -> float:
    if not sorted_vals:
        return 0.0
    return sorted_vals[max(1, math.ceil(len(sorted_vals) * p / 100.0)) - 1]


def worker(url: str, rate: float, seconds: float, mode: str, sink_kind: str) -> dict[str, Any]:
    """Runs in its own process: one run_load, CPU measured around it only."""
    import asyncio

    from harness.load import ConnMode, LoadSpec, run_load
    from harness.records import SKIPPED, RequestRecord
    from harness.summary import Accumulator

    spec = LoadSpec(url=url, rate=rate, duration=seconds, mode=ConnMode(mode))
    n = spec.total()
    lateness = array("d")
    latency = array("d")
    kinds: dict[str, int] = {}
    first_start = [math.inf]
    last_start = [-math.inf]
    acc = Accumulator()

    def sink_minimal(rec: RequestRecord) -> None:
        kinds[rec.kind] = kinds.get(rec.kind, 0) + 1
        if rec.kind == SKIPPED:
            return
        lateness.append(rec.start - rec.sched)
        latency.append(rec.end - rec.start)
        first_start[0] = min(first_start[0], rec.start)
        last_start[0] = max(last_start[0], rec.start)

    def sink_acc(rec: RequestRecord) -> None:  # what `rollout-harness load` does per record (without the JSONL writer)
        acc.add(rec)
        sink_minimal(rec)

    sink = sink_acc if sink_kind == "accumulator" else sink_minimal
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    result = asyncio.run(run_load(spec, sink))
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    sent = sum(v for k, v in kinds.items() if k != SKIPPED)
    span = last_start[0] - first_start[0]
    late = array("d", sorted(lateness))
    lat = array("d", sorted(latency))
    return {
        "scheduled": n,
        "sent": sent,
        "ok": kinds.get("ok", 0),
        "skipped": kinds.get(SKIPPED, 0),
        "failed": sum(v for k, v in kinds.items() if k not in ("ok", SKIPPED)),
        "kinds": kinds,
        "achieved_rate": sent / span if span > 0 else 0.0,
        "lateness_ms": {"p50": 1000 * _pct(late, 50), "p99": 1000 * _pct(late, 99), "max": 1000 * (late[-1] if late else 0)},
        "latency_ms": {"p50": 1000 * _pct(lat, 50), "p99": 1000 * _pct(lat, 99), "max": 1000 * (lat[-1] if lat else 0)},
        "cpu_seconds": result.cpu_seconds,  # time.process_time() delta inside run_load
        "cpu_user_seconds": ru1.ru_utime - ru0.ru_utime,
        "cpu_sys_seconds": ru1.ru_stime - ru0.ru_stime,
        "wall_seconds": result.wall_seconds,
        "max_rss_kib": ru1.ru_maxrss,
    }


# --------------------------------------------------------------------------- probe app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc (the probe app is not reaped until the end)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class ProbeApp:
    def __init__(self, python: str) -> None:
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="probe_app-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> None:
        env = {**os.environ, "PORT": str(self.port), "POD_NAME": "bench", "VERSION": "bench"}
        self.proc = subprocess.Popen([self.python, str(APP)], env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"probe_app exited with {self.proc.returncode}; log: {self.log.name}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "healthz", timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.1)
        raise SystemExit(f"probe_app not healthy on :{self.port} after 20 s; log: {self.log.name}")

    def ensure_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            print(f"  ! probe_app was dead (rc={self.proc and self.proc.returncode}); restarting", file=sys.stderr)
            self.start()

    def cpu(self) -> float:
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(cmd: list[str], timeout: float, **kw: Any) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run to completion; return (result, its CPU seconds via RUSAGE_CHILDREN delta, wall seconds)."""
    c0, w0 = children_cpu(), time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    return res, children_cpu() - c0, time.monotonic() - w0


# --------------------------------------------------------------------------- the three tools


def run_ours(args: argparse.Namespace, app: ProbeApp, mode: str, rate: int) -> dict[str, Any]:
    cmd = [
        args.python,
        str(Path(__file__).resolve()),
        "--worker",
        json.dumps({"url": app.url, "rate": rate, "seconds": args.seconds, "mode": mode, "sink": args.sink}),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    s0 = app.cpu()
    res, proc_cpu, _ = run_child(cmd, timeout=args.seconds + 60, env=env, cwd=ROOT)
    server_cpu = app.cpu() - s0
    if res.returncode != 0:
        raise SystemExit(f"our generator failed (rc={res.returncode}):\n{res.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    out.update(
        tool="ours",
        mode=mode,
        rate=rate,
        process_cpu_seconds=proc_cpu,
        cpu_ms_per_1k=1e6 * out["cpu_seconds"] / max(out["sent"], 1),
        process_cpu_ms_per_1k=1e6 * proc_cpu / max(out["sent"], 1),
        server_cpu_pct=100 * server_cpu / max(out["wall_seconds"], 1e-9),
    )
    return out


def run_vegeta(args: argparse.Namespace, app: ProbeApp, mode: str, rate: int, tmp: Path) -> dict[str, Any]:
    targets = tmp / "targets.txt"
    targets.write_text(f"GET {app.url}\n")
    results = tmp / f"vegeta-{mode}-{rate}.bin"
    timeout_s = 3  # = our LoadSpec connect_timeout (1 s) + read_timeout (2 s); vegeta has one total timeout
    cmd = [
        args.vegeta,
        "attack",
        f"-rate={rate}/s",
        f"-duration={args.seconds:g}s",
        f"-keepalive={'true' if mode == 'keepalive' else 'false'}",
        f"-max-workers={args.max_workers}",
        f"-timeout={timeout_s}s",
        "-http2=false",
        f"-targets={targets}",
        f"-output={results}",
    ]
    s0 = app.cpu()
    res, cpu, wall = run_child(cmd, timeout=args.seconds + 60)
    server_cpu = app.cpu() - s0
    if res.returncode != 0:
        raise SystemExit(f"vegeta attack failed (rc={res.returncode}): {res.stderr[-2000:]}")
    rep = subprocess.run([args.vegeta, "report", "-type=json", str(results)], capture_output=True, text=True, check=True, timeout=120)
    r = json.loads(rep.stdout)
    results.unlink(missing_ok=True)
    n = int(r["requests"])
    ok = round(float(r["success"]) * n)
    lat = r["latencies"]
    return {
        "tool": "vegeta",
        "mode": mode,
        "rate": rate,
        "scheduled": int(rate * args.seconds),
        "sent": n,
        "ok": ok,
        "failed": n - ok,
        "skipped": None,
        "success_ratio": r["success"],
        "status_codes": r["status_codes"],
        "errors": r.get("errors") or [],
        "achieved_rate": r["rate"],
        "throughput": r["throughput"],
        "latency_ms": {"p50": lat["50th"] / 1e6, "p99": lat["99th"] / 1e6, "max": lat["max"] / 1e6},
        "lateness_ms": None,
        "cpu_seconds": cpu,
        "cpu_ms_per_1k": 1e6 * cpu / max(n, 1),
        "wall_seconds": wall,
        "server_cpu_pct": 100 * server_cpu / max(wall, 1e-9),
    }


def run_wrk(args: argparse.Namespace, app: ProbeApp) -> dict[str, Any]:
    cmd = [args.wrk, "-t1", f"-c{args.wrk_connections}", f"-d{max(1, round(args.seconds))}s", "--latency", app.url]
    s0 = app.cpu()
    res, cpu, wall = run_child(cmd, timeout=args.seconds + 60)
    server_cpu = app.cpu() - s0
    if res.returncode != 0:
        raise SystemExit(f"wrk failed (rc={res.returncode}): {res.stderr[-2000:]}")
    text = res.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "tool": "wrk",
        "mode": "keepalive",
        "connections": args.wrk_connections,
        "threads": 1,
        "requests_per_sec": float(m.group(1)) if m else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "wrk_cpu_seconds": cpu,
        "server_cpu_pct": 100 * server_cpu / max(wall, 1e-9),
        "raw": text,
    }


# --------------------------------------------------------------------------- reporting


def _f(x: float | None, nd: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def row(p: dict[str, Any], ratio: float | None) -> list[Any]:
    late = p.get("lateness_ms")
    fails = f"{p['failed']:,}" + (f" (+{p['skipped']:,} skipped)" if p.get("skipped") else "")
    return [
        p["tool"],
        p["mode"],
        p["rate"],
        _f(p["achieved_rate"]),
        _f(late and late["p50"], 3),
        _f(late and late["p99"], 3),
        fails,
        _f(p["cpu_ms_per_1k"]),
        _f(ratio, 2) if p["tool"] == "ours" else "",
        f"{p['server_cpu_pct']:.0f}%",
    ]


HEADERS = [
    "tool",
    "mode",
    "target rate",
    "achieved rate",
    "lateness p50 ms",
    "lateness p99 ms",
    "failures",
    "CPU ms / 1k req",
    "CPU ours/vegeta",
    "probe_app CPU",
]


def cpu_ratio(points: list[dict[str, Any]], mode: str, rate: int) -> float | None:
    ours = next((p for p in points if p["tool"] == "ours" and p["mode"] == mode and p["rate"] == rate), None)
    veg = next((p for p in points if p["tool"] == "vegeta" and p["mode"] == mode and p["rate"] == rate), None)
    if ours is None or veg is None or veg["cpu_ms_per_1k"] <= 0:
        return None
    return float(ours["cpu_ms_per_1k"] / veg["cpu_ms_per_1k"])


def goals(points: list[dict[str, Any]], wrk: dict[str, Any] | None) -> list[dict[str, Any]]:
    ours = [p for p in points if p["tool"] == "ours"]
    out: list[dict[str, Any]] = []

    pts = [p for p in ours if p["rate"] <= LATENESS_MAX_RATE]
    bad = [f"{p['mode']}@{p['rate']}: {p['lateness_ms']['p99']:.3f} ms" for p in pts if p["lateness_ms"]["p99"] > LATENESS_P99_MS]
    modes = sorted({p["mode"] for p in pts})
    out.append(
        {
            "goal": f"p99 lateness <= {LATENESS_P99_MS:g} ms up to {LATENESS_MAX_RATE:,} req/s, both modes",
            "result": "not measured" if not pts else ("FAIL" if bad else ("PASS" if len(modes) == 2 else "PASS (partial)")),
            "detail": "; ".join(bad) if bad else ", ".join(f"{p['mode']}@{p['rate']}: {p['lateness_ms']['p99']:.3f} ms" for p in pts),
        }
    )

    sp = next((p for p in ours if p["mode"] == "keepalive" and p["rate"] == SUSTAIN_RATE), None)
    if sp is None:
        out.append(
            {
                "goal": f">= {SUSTAIN_RATE:,} req/s sustained in keepalive",
                "result": "not measured",
                "detail": f"run with --rates including {SUSTAIN_RATE} and --modes including keepalive",
            }
        )
    else:
        bad_frac = (sp["failed"] + sp["skipped"]) / max(sp["scheduled"], 1)
        ok = (
            sp["achieved_rate"] >= SUSTAIN_MIN_FRACTION * SUSTAIN_RATE
            and bad_frac <= SUSTAIN_MAX_BAD_FRACTION
            and sp["lateness_ms"]["p99"] <= SUSTAIN_LATENESS_P99_MS
        )
        detail = (
            f"achieved {sp['achieved_rate']:,.1f}/s, failed+skipped {100 * bad_frac:.3f} %, "
            f"lateness p99 {sp['lateness_ms']['p99']:.3f} ms, probe_app CPU {sp['server_cpu_pct']:.0f}%"
        )
        if sp["server_cpu_pct"] >= SERVER_BOUND_PCT or (wrk and wrk["requests_per_sec"] < 1.25 * SUSTAIN_RATE):
            detail += (
                f" - probe_app is near its ceiling (wrk: {wrk['requests_per_sec']:,.0f} req/s)"
                if wrk
                else " - probe_app near 100% of a core: it may be the bottleneck"
            )
        out.append(
            {
                "goal": f">= {SUSTAIN_RATE:,} req/s sustained in keepalive "
                f"(>= {100 * SUSTAIN_MIN_FRACTION:g} % of target, <= {100 * SUSTAIN_MAX_BAD_FRACTION:g} % failed/skipped, "
                f"p99 lateness <= {SUSTAIN_LATENESS_P99_MS:g} ms)",
                "result": "PASS" if ok else "FAIL",
                "detail": detail,
            }
        )

    ratios = [(p["mode"], p["rate"], cpu_ratio(points, p["mode"], p["rate"])) for p in ours]
    ratios = [r for r in ratios if r[2] is not None]
    bad_r = [r for r in ratios if r[2] > CPU_RATIO_MAX]  # type: ignore[operator]
    out.append(
        {
            "goal": f"CPU per request <= {CPU_RATIO_MAX:g}x vegeta's at the same rate",
            "result": "not measured" if not ratios else ("FAIL" if bad_r else "PASS"),
            "detail": ", ".join(f"{m}@{r}: {x:.2f}x" for m, r, x in ratios),
        }
    )
    return out


def env_info(args: argparse.Namespace) -> dict[str, Any]:
    def sh(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
            return (r.stdout + r.stderr).strip()
        except OSError as exc:
            return f"unavailable: {exc}"

    def sysctl(name: str) -> str:
        try:
            return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
        except OSError:
            return "?"

    veg_mod = re.search(r"mod\s+github.com/tsenart/vegeta/v12\s+(\S+)", sh(["go", "version", "-m", args.vegeta]))
    import aiohttp

    return {
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "vegeta": veg_mod.group(1) if veg_mod else "unknown (go version -m failed)",
        "wrk": sh([args.wrk, "-v"]).splitlines()[0] if shutil.which(args.wrk) else None,
        "tcp_tw_reuse": sysctl("net.ipv4.tcp_tw_reuse"),
        "ip_local_port_range": sysctl("net.ipv4.ip_local_port_range"),
        "somaxconn": sysctl("net.core.somaxconn"),
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of each point (default 30)")
    ap.add_argument("--rates", default="500,1000,2000,4000", help="comma-separated req/s (default 500,1000,2000,4000)")
    ap.add_argument("--modes", default="new,keepalive", help="comma-separated: new, keepalive (default both)")
    ap.add_argument("--tools", default="ours,vegeta,wrk", help="comma-separated subset of ours,vegeta,wrk")
    ap.add_argument(
        "--sink",
        choices=("minimal", "accumulator"),
        default="minimal",
        help="per-record work in our generator's sink: minimal (collect lateness only, default) or "
        "accumulator (also harness.summary.Accumulator, as `rollout-harness load` does)",
    )
    ap.add_argument("--vegeta", default=str(DEFAULT_VEGETA), help=f"vegeta binary (default {DEFAULT_VEGETA})")
    ap.add_argument("--wrk", default="wrk", help="wrk binary (default: wrk on PATH)")
    ap.add_argument("--wrk-connections", type=int, default=32)
    ap.add_argument("--max-workers", type=int, default=2000, help="vegeta -max-workers (default 2000 = our max_in_flight)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds of rest between runs (default 2)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for probe_app and our generator")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    for m in args.modes:
        if m not in ("new", "keepalive"):
            ap.error(f"unknown mode {m!r}")
    for t in args.tools:
        if t not in ("ours", "vegeta", "wrk"):
            ap.error(f"unknown tool {t!r}")
    if args.seconds <= 0 or not args.rates or any(r <= 0 for r in args.rates):
        ap.error("--seconds and every rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        w = json.loads(args.worker)
        print(json.dumps(worker(w["url"], w["rate"], w["seconds"], w["mode"], w["sink"])))
        return 0
    from tabulate import tabulate

    if "vegeta" in args.tools and not os.access(args.vegeta, os.X_OK):
        raise SystemExit(f"vegeta not found at {args.vegeta}: run bench/run.sh (it installs it) or pass --vegeta")
    if "wrk" in args.tools and not shutil.which(args.wrk):
        raise SystemExit("wrk not found: run bench/run.sh (it installs it) or pass --wrk")

    info = env_info(args)
    print(
        f"# load generator benchmark: {len(args.modes)} modes x {len(args.rates)} rates x {args.seconds:g} s, "
        f"{info['cpus']} CPUs, load average {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}"
    )
    print(f"python {info['python']}, aiohttp {info['aiohttp']}, vegeta {info['vegeta']}, {info['wrk']}, sink={args.sink}\n")

    app = ProbeApp(args.python)
    app.start()
    points: list[dict[str, Any]] = []
    wrk: dict[str, Any] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as td:
            if "wrk" in args.tools:
                print(f"## probe_app ceiling: wrk -t1 -c{args.wrk_connections} -d{max(1, round(args.seconds))}s (keepalive)")
                wrk = run_wrk(args, app)
                print(
                    tabulate(
                        [
                            [
                                "wrk",
                                "keepalive",
                                f"{wrk['requests_per_sec']:,.1f}",
                                wrk["non_2xx"] + wrk["socket_errors"],
                                f"{wrk['server_cpu_pct']:.0f}%",
                            ]
                        ],
                        headers=["tool", "mode", "achieved rate (max)", "errors", "probe_app CPU"],
                        tablefmt="github",
                    )
                )
                print()
                time.sleep(args.pause)
            for mode in args.modes:
                for rate in args.rates:
                    here: list[dict[str, Any]] = []
                    for tool in ("ours", "vegeta"):
                        if tool not in args.tools:
                            continue
                        app.ensure_alive()
                        p = run_ours(args, app, mode, rate) if tool == "ours" else run_vegeta(args, app, mode, rate, Path(td))
                        p["loadavg_1m"] = os.getloadavg()[0]
                        here.append(p)
                        points.append(p)
                        time.sleep(args.pause)
                    print(f"## {mode} @ {rate:,} req/s for {args.seconds:g} s")
                    print(
                        tabulate(
                            [row(p, cpu_ratio(points, mode, rate)) for p in here], headers=HEADERS, tablefmt="github", disable_numparse=True
                        )
                    )
                    print()
    finally:
        app.stop()

    print("## all points")
    print(
        tabulate(
            [row(p, cpu_ratio(points, p["mode"], p["rate"])) for p in points], headers=HEADERS, tablefmt="github", disable_numparse=True
        )
    )
    print()
    g = goals(points, wrk)
    print("## goals")
    print(tabulate([[x["goal"], x["result"], x["detail"]] for x in g], headers=["goal", "result", "detail"], tablefmt="github"))
    notes = []
    if wrk:
        notes.append(
            f"probe_app ceiling (wrk, keepalive, 1 process): {wrk['requests_per_sec']:,.0f} req/s "
            f"at {wrk['server_cpu_pct']:.0f}% of one core"
        )
    hot = [p for p in points if p["server_cpu_pct"] >= SERVER_BOUND_PCT]
    if hot:
        notes.append(
            "probe_app at >= {:g}% of a core (likely the bottleneck) in: {}".format(
                SERVER_BOUND_PCT, ", ".join(f"{p['tool']} {p['mode']}@{p['rate']}" for p in hot)
            )
        )
    info["loadavg_end"] = os.getloadavg()
    if info["loadavg_end"][0] > (info["cpus"] or 1) * 0.75 or info["loadavg_start"][0] > (info["cpus"] or 1) * 0.75:
        notes.append(
            f"machine was busy (load average {info['loadavg_start'][0]:.2f} -> {info['loadavg_end'][0]:.2f} "
            f"on {info['cpus']} CPUs): numbers are not representative"
        )
    for n in notes:
        print(f"- {n}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "env": info,
        "params": {
            "seconds": args.seconds,
            "rates": args.rates,
            "modes": args.modes,
            "tools": sorted(args.tools),
            "sink": args.sink,
            "vegeta_max_workers": args.max_workers,
            "wrk_connections": args.wrk_connections,
        },
        "wrk": wrk,
        "points": points,
        "cpu_ratio_ours_over_vegeta": {f"{m}@{r}": cpu_ratio(points, m, r) for m in args.modes for r in args.rates},
        "goals": g,
        "notes": notes,
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
