"""Generator headroom in modes h2 and grpc: our generator (harness.loadworker's child, as `run` drives it) against
one probe app on loopback serving HTTP/2 (h2c) and gRPC, at each rate: achieved rate, start lateness (p50, p99,
max), skipped and unsent requests, generator CPU per 1,000 requests, the app's CPU. Goal (issue 20): at 1,000 req/s
the rate achieved with no skips and a p99 lateness of at most 2 ms.

Not a test: prints a markdown table and exits 0 unless the benchmark could not run. Run from the repository root:
`python -m bench.h2_load [--seconds 20] [--rates 1000,4000] [--modes h2,grpc]`. Not yet here: the reference tools
(h2load from Debian's nghttp2-client, a gRPC load tool) side by side.
"""

from __future__ import annotations

import argparse
import time

from tabulate import tabulate

from bench import tools
from probe_app.local import free_port, running

MODES = ("h2", "grpc")
GOAL_RATE, GOAL_P99_MS = 1000, 2.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="h2_load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each point (default 20)")
    ap.add_argument("--rates", default="1000,4000", help="comma-separated req/s (default 1000,4000)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: h2, grpc (default both)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds of rest between runs (default 2)")
    args = ap.parse_args(argv)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := [m for m in modes if m not in MODES]:
        ap.error(f"unknown mode {unknown[0]!r} (modes: {', '.join(MODES)})")
    rows = []
    with running(H2_PORT=str(free_port()), GRPC_PORT=str(free_port()), POD_NAME="bench") as app:
        for mode in modes:
            for rate in rates:
                p = tools.run_ours(app, mode, rate, args.seconds)
                assert p.lateness is not None
                goal = ""
                if rate == GOAL_RATE:
                    met = p.skipped == 0 and p.unsent == 0 and p.achieved_rate >= 0.99 * rate and p.lateness.p99 <= GOAL_P99_MS
                    goal = "met" if met else "MISSED"
                rows.append(
                    [
                        mode,
                        rate,
                        f"{p.achieved_rate:.0f}",
                        f"{p.lateness.p50:.2f}",
                        f"{p.lateness.p99:.2f}",
                        f"{p.lateness.max:.1f}",
                        p.skipped,
                        p.unsent,
                        p.failed,
                        f"{p.latency.p99:.2f}",
                        f"{p.cpu_ms_per_1k:.0f}",
                        f"{p.server_cpu_pct:.0f}",
                        p.scheduling,
                        goal,
                    ]
                )
                time.sleep(args.pause)
    headers = ["mode", "rate", "achieved", "late p50 ms", "late p99 ms", "late max ms", "skipped", "unsent", "failed"]
    headers += ["latency p99 ms", "gen CPU ms/1k", "app CPU %", "sched", f"goal ({GOAL_RATE}/s, p99 <= {GOAL_P99_MS:g} ms)"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
