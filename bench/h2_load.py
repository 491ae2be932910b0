"""Generator headroom in modes h2 and grpc: our generator (harness.loadworker's child, as `run` drives it) and, side
by side at the same rate and duration, the mode's reference tool (h2load for h2, ghz for grpc: bench/reftools.py),
against one probe app on loopback serving HTTP/2 (h2c) and gRPC, over as many connections as ours uses
(LoadSpec.mux_connections). Per tool and rate: achieved rate, p99 start lateness (ours only: the others schedule no
start times to be late against), p99 latency, failures, CPU per 1,000 requests, and ours over the reference's.
Goal (issue 20): at 1,000 req/s our rate achieved with no skips and a p99 lateness of at most 2 ms.

Not a test: prints a markdown table and exits 0 unless the benchmark could not run. Run from the repository root:
`python -m bench.h2_load [--seconds 20] [--rates 1000,4000] [--modes h2,grpc] [--tools ours,h2load,ghz]`. A missing
h2load is installed with apt-get (as root), a missing ghz built with Go into ~/.cache/rollout-harness/tools.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from tabulate import tabulate

from bench import reftools, tools
from bench.tools import Point
from harness.errors import HarnessError, exit_code
from probe_app.local import free_port, running

MODES = ("h2", "grpc")
REFERENCE = {"h2": "h2load", "grpc": "ghz"}
TOOLS = ("ours", *REFERENCE.values())
GOAL_RATE, GOAL_P99_MS = 1000, 2.0
VERSION = "v1"
HEADERS = ["tool", "mode", "rate", "achieved", "late p99 ms", "latency p99 ms", "skipped", "unsent", "failed"]
HEADERS += ["CPU ms/1k", "ours/ref CPU", "app CPU %", f"goal ({GOAL_RATE}/s, late p99 <= {GOAL_P99_MS:g} ms)"]


def process_ms_per_1k(p: Point) -> float:
    """CPU milliseconds per 1,000 sent requests of the tool's whole process, start-up included (RUSAGE_CHILDREN over
    its life): ours its child's process_cpu_seconds, the reference tools their cpu_seconds. The table shows ours' also
    inside its load loop alone (Point.cpu_ms_per_1k: without the interpreter's start-up and imports) as `(loop N)`."""
    cpu = p.process_cpu_seconds if p.process_cpu_seconds is not None else p.cpu_seconds
    return 1e6 * cpu / max(p.sent, 1)


def goal(p: Point) -> str:
    """Ours at GOAL_RATE: `met` when nothing was skipped or left unsent, >= 99 % of the rate achieved and p99 lateness
    <= GOAL_P99_MS; `MISSED` otherwise; empty for other rates and tools."""
    if p.tool != "ours" or p.rate != GOAL_RATE or p.lateness is None:
        return ""
    met = p.skipped == 0 and p.unsent == 0 and p.achieved_rate >= 0.99 * p.rate and p.lateness.p99 <= GOAL_P99_MS
    return "met" if met else "MISSED"


def table(points: Sequence[Point]) -> str:
    """One row per point; a reference tool's row carries ours/ref CPU (process_ms_per_1k) at its mode and rate."""
    ours = {(p.mode, p.rate): p for p in points if p.tool == "ours"}
    rows = []
    for p in points:
        mine = ours.get((p.mode, p.rate))
        ratio = f"{process_ms_per_1k(mine) / process_ms_per_1k(p):.2f}" if p.tool != "ours" and mine and p.sent else ""
        rows.append(
            [
                p.tool,
                p.mode,
                f"{p.rate:,}",
                f"{p.achieved_rate:,.0f}",
                f"{p.lateness.p99:.2f}" if p.lateness else "n/a",
                f"{p.latency.p99:.2f}",
                p.skipped if p.skipped is not None else "n/a",
                p.unsent,
                p.failed,
                f"{process_ms_per_1k(p):.0f}" + (f" (loop {p.cpu_ms_per_1k:.0f})" if p.tool == "ours" else ""),
                ratio,
                f"{p.server_cpu_pct:.0f}",
                goal(p),
            ]
        )
    return tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="h2_load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each run (default 20)")
    ap.add_argument("--rates", default="1000,4000", help="comma-separated req/s (default 1000,4000)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: h2, grpc (default both)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of ours,h2load,ghz (default all)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds of rest between runs (default 2)")
    args = ap.parse_args(argv)
    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        ap.error(f"--rates must be comma-separated integers, not {args.rates!r}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    if unknown := [m for m in args.modes if m not in MODES] + [t for t in args.tools if t not in TOOLS]:
        ap.error(f"unknown mode or tool {unknown[0]!r} (modes: {', '.join(MODES)}; tools: {', '.join(TOOLS)})")
    if args.seconds <= 0 or not args.rates or any(r <= 0 for r in args.rates):
        ap.error("--seconds and every rate must be positive")
    return args


def measure(args: argparse.Namespace) -> list[Point]:
    """Each mode x rate: ours, then the mode's reference tool, against one probe app."""
    refs = {m: REFERENCE[m] for m in args.modes if REFERENCE[m] in args.tools}
    exes = {t: reftools.h2load_binary() if t == "h2load" else reftools.ghz_binary() for t in refs.values()}
    pod = reftools.grpc_pod_name(VERSION, reftools.port_digits()) if "ghz" in exes else "bench"
    points = []
    with running(H2_PORT=str(free_port()), GRPC_PORT=str(free_port()), POD_NAME=pod, VERSION=VERSION) as app:
        for mode in args.modes:
            for rate in args.rates:
                for tool in [t for t in ("ours", refs.get(mode, "")) if t in args.tools]:
                    if app.proc.poll() is not None:
                        raise HarnessError(f"probe_app died (exit {app.proc.returncode}); its log:\n{app.output()[-3000:]}")
                    reftools.say(f"{tool} {mode} @ {rate:,} req/s for {args.seconds:g} s")
                    if tool == "ours":
                        points.append(tools.run_ours(app, mode, rate, args.seconds))
                    elif tool == "h2load":
                        points.append(reftools.run_h2load(exes[tool], app, rate, args.seconds))
                    else:
                        points.append(reftools.run_ghz(exes[tool], app, rate, args.seconds))
                    time.sleep(args.pause)
    return points


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load0 = os.getloadavg()
    try:
        points = measure(args)
    except HarnessError as e:
        print(f"h2_load: error: {e}", file=sys.stderr)
        return exit_code(e)
    load1 = os.getloadavg()
    print(
        f"modes {','.join(args.modes)} x {','.join(map(str, args.rates))} req/s x {args.seconds:g} s, {os.cpu_count()} CPUs; "
        f"load average (1/5/15 min) {' '.join(f'{x:.2f}' for x in load0)} at the start, {' '.join(f'{x:.2f}' for x in load1)} at the end\n"
    )
    print(table(points))
    for p in points:
        if p.errors:
            print(f"- {p.tool} {p.mode} @ {p.rate:,}: {'; '.join(p.errors)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
