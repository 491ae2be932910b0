"""Benchmark our load generator against vegeta (and wrk for the server's ceiling) on loopback.

Not a test: it prints markdown tables and pass/fail against the goals (bench/goals.py), writes
bench/results/latest.json, and exits 0 unless the benchmark itself could not run (a missed goal is reported,
not raised).

Per point (mode x rate): ours (bench/tools.py: harness.loadworker's child, as `rollout-harness run` drives it),
then vegeta at the same rate and duration, both against one probe_app process started here (probe_app.local).
wrk runs once first for the probe app's own keepalive ceiling. Run from the repository root as
`python -m bench.bench_load` (bench/run.sh does). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from bench import goals, tools
from harness.errors import HarnessError
from probe_app.local import LocalApp, running

HERE = Path(__file__).resolve().parent
DEFAULT_VEGETA = tools.TOOLS_DIR / "vegeta"
MODES, TOOLS = ("new", "keepalive"), ("ours", "vegeta", "wrk")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench_load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of each point (default 30)")
    ap.add_argument("--rates", default="500,1000,2000,4000", help="comma-separated req/s (default 500,1000,2000,4000)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: new, keepalive (default both)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of ours,vegeta,wrk")
    ap.add_argument("--vegeta", default=str(DEFAULT_VEGETA), help=f"vegeta binary (default {DEFAULT_VEGETA})")
    ap.add_argument("--wrk", default="wrk", help="wrk binary (default: wrk on PATH)")
    ap.add_argument("--wrk-connections", type=int, default=32)
    ap.add_argument("--max-workers", type=int, default=2000, help="vegeta -max-workers (default 2000 = our max_in_flight)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds of rest between runs (default 2)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
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


def env_info(args: argparse.Namespace) -> dict[str, Any]:
    def sh(cmd: list[str]) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
            return (r.stdout + r.stderr).strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unavailable: {exc}"

    def sysctl(name: str) -> str:
        try:
            return Path("/proc/sys/" + name.replace(".", "/")).read_text().strip()
        except OSError:
            return "?"

    veg_mod = re.search(r"mod\s+github.com/tsenart/vegeta/v12\s+(\S+)", sh(["go", "version", "-m", args.vegeta]))
    return {
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 1,
        "loadavg_start": os.getloadavg(),
        "vegeta": veg_mod.group(1) if veg_mod else "unknown (go version -m failed)",
        "wrk": sh([args.wrk, "-v"]).splitlines()[0] if shutil.which(args.wrk) else None,
        "tcp_tw_reuse": sysctl("net.ipv4.tcp_tw_reuse"),
        "ip_local_port_range": sysctl("net.ipv4.ip_local_port_range"),
        "somaxconn": sysctl("net.core.somaxconn"),
    }


def measure(args: argparse.Namespace, app: LocalApp) -> tuple[list[tools.Point], tools.Ceiling | None]:
    """wrk once, then every mode x rate x tool; prints each point's table as it comes."""
    ceiling = None
    if "wrk" in args.tools:
        print(f"## probe_app ceiling: wrk -t1 -c{args.wrk_connections} -d{max(1, round(args.seconds))}s (keepalive)")
        ceiling = tools.run_wrk(args.wrk, app, args.seconds, args.wrk_connections)
        print(goals.ceiling_table(ceiling), end="\n\n", flush=True)
        time.sleep(args.pause)
    points: list[tools.Point] = []
    for mode in args.modes:
        for rate in args.rates:
            here = []
            for tool in [t for t in ("ours", "vegeta") if t in args.tools]:
                if app.proc.poll() is not None:
                    raise HarnessError(f"probe_app died (exit {app.proc.returncode}); its log:\n{app.output()[-3000:]}")
                if tool == "ours":
                    here.append(tools.run_ours(app, mode, rate, args.seconds))
                else:
                    here.append(tools.run_vegeta(args.vegeta, app, mode, rate, args.seconds, args.max_workers))
                points.append(here[-1])
                time.sleep(args.pause)
            print(f"## {mode} @ {rate:,} req/s for {args.seconds:g} s")
            print(goals.points_table(here, points), end="\n\n", flush=True)
    return points, ceiling


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "vegeta" in args.tools and not os.access(args.vegeta, os.X_OK):
        print(f"bench: error: vegeta not found at {args.vegeta}: run bench/run.sh (it installs it) or pass --vegeta", file=sys.stderr)
        return 2
    if "wrk" in args.tools and not shutil.which(args.wrk):
        print("bench: error: wrk not found: run bench/run.sh (it installs it) or pass --wrk", file=sys.stderr)
        return 2

    info = env_info(args)
    print(
        f"# load generator benchmark: {len(args.modes)} modes x {len(args.rates)} rates x {args.seconds:g} s, "
        f"{info['cpus']} CPUs, load average {' '.join(f'{x:.2f}' for x in info['loadavg_start'])}"
    )
    print(f"python {info['python']}, aiohttp {info['aiohttp']}, vegeta {info['vegeta']}, {info['wrk']}\n", flush=True)
    try:
        with running(timeout=20, POD_NAME="bench", VERSION="bench") as app:
            points, ceiling = measure(args, app)
    except HarnessError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2

    info["loadavg_end"] = os.getloadavg()
    checked = goals.check(points, ceiling)
    notes = goals.notes(points, ceiling, (info["loadavg_start"][0], info["loadavg_end"][0]), info["cpus"])
    print("## all points")
    print(goals.points_table(points, points), end="\n\n")
    print("## goals")
    print(goals.goals_table(checked))
    for n in notes:
        print(f"- {n}")

    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "env": info,
        "params": {
            "seconds": args.seconds,
            "rates": args.rates,
            "modes": args.modes,
            "tools": sorted(args.tools),
            "vegeta_max_workers": args.max_workers,
            "vegeta_timeout_s": tools.VEGETA_TIMEOUT_S,
            "wrk_connections": args.wrk_connections,
        },
        "wrk": asdict(ceiling) if ceiling else None,
        "points": [p.to_json() for p in points],
        "cpu_ratio_ours_over_vegeta": {f"{m}@{r}": goals.cpu_ratio(points, m, r) for m in args.modes for r in args.rates},
        "goals": [asdict(g) for g in checked],
        "notes": notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
