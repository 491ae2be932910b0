"""The benchmark's goals for our generator, checked against measured points, and the tables that print them.

Pure functions of tools.Point / tools.Ceiling: no process, socket or clock here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tabulate import tabulate

from bench.tools import Ceiling, Point

# Goals (printed PASS / FAIL / not measured); issue 11's, which tightened issue 3's (2 ms up to 2,000 req/s,
# 4,000 req/s sustained, CPU <= 2x vegeta).
LATENESS_P99_MS = 2.0  # p99 start lateness, ours, at rates up to LATENESS_MAX_RATE[mode]
LATENESS_MAX_RATE = {"keepalive": 4000, "new": 1000}
SUSTAIN_RATE = 5000  # keepalive, ours
SUSTAIN_MIN_FRACTION = 0.99  # achieved >= 99 % of target ...
SUSTAIN_MAX_BAD_FRACTION = 0.001  # ... at most 0.1 % failed or never sent, none skipped ...
# ... and not falling behind its schedule: an open-loop generator that falls behind still reaches the average
# rate by bursting, so lateness is what shows it is keeping up
SUSTAIN_LATENESS_P99_MS = 10.0
CPU_RATIO_MAX = 1.3  # ours / vegeta CPU per request, same mode and rate
SERVER_BOUND_PCT = 90.0  # probe_app CPU (% of one core) above which it is probably the bottleneck
CEILING_HEADROOM = 1.25  # wrk must reach 1.25 x SUSTAIN_RATE, or that point measures the app as much as us

PASS, FAIL, PARTIAL, NOT_MEASURED = "PASS", "FAIL", "PASS (partial)", "not measured"


@dataclass(frozen=True)
class Goal:
    goal: str
    result: str
    """PASS, FAIL, PASS (partial) or not measured."""
    detail: str


def _late99(p: Point) -> float:
    return p.lateness.p99 if p.lateness is not None else math.inf


def find(points: Sequence[Point], tool: str, mode: str, rate: int) -> Point | None:
    return next((p for p in points if (p.tool, p.mode, p.rate) == (tool, mode, rate)), None)


def cpu_ratio(points: Sequence[Point], mode: str, rate: int) -> float | None:
    """Our CPU per request over vegeta's, at one mode and rate; None unless both were measured."""
    ours, veg = find(points, "ours", mode, rate), find(points, "vegeta", mode, rate)
    if ours is None or veg is None or veg.cpu_ms_per_1k <= 0:
        return None
    return ours.cpu_ms_per_1k / veg.cpu_ms_per_1k


def lateness_goal(points: Sequence[Point]) -> Goal:
    upto = " and ".join(f"{rate:,} req/s {mode}" for mode, rate in LATENESS_MAX_RATE.items())
    goal = f"p99 lateness <= {LATENESS_P99_MS:g} ms up to {upto}"
    pts = [p for p in points if p.tool == "ours" and p.rate <= LATENESS_MAX_RATE.get(p.mode, 0)]
    if not pts:
        return Goal(goal, NOT_MEASURED, "")
    bad = [p for p in pts if _late99(p) > LATENESS_P99_MS]
    result = FAIL if bad else (PASS if {p.mode for p in pts} == set(LATENESS_MAX_RATE) else PARTIAL)
    return Goal(goal, result, ", ".join(f"{p.mode}@{p.rate}: {_late99(p):.3f} ms" for p in (bad or pts)))


def sustain_goal(points: Sequence[Point], ceiling: Ceiling | None) -> Goal:
    sp = find(points, "ours", "keepalive", SUSTAIN_RATE)
    if sp is None:
        detail = f"run with --rates including {SUSTAIN_RATE} and --modes including keepalive"
        return Goal(f">= {SUSTAIN_RATE:,} req/s sustained in keepalive", NOT_MEASURED, detail)
    goal = (
        f">= {SUSTAIN_RATE:,} req/s sustained in keepalive (>= {100 * SUSTAIN_MIN_FRACTION:g} % of target, none skipped, "
        f"<= {100 * SUSTAIN_MAX_BAD_FRACTION:g} % failed/unsent, p99 lateness <= {SUSTAIN_LATENESS_P99_MS:g} ms)"
    )
    bad_fraction = (sp.scheduled - sp.ok) / max(sp.scheduled, 1)
    ok = (
        sp.achieved_rate >= SUSTAIN_MIN_FRACTION * SUSTAIN_RATE
        and not sp.skipped
        and bad_fraction <= SUSTAIN_MAX_BAD_FRACTION
        and _late99(sp) <= SUSTAIN_LATENESS_P99_MS
    )
    detail = (
        f"achieved {sp.achieved_rate:,.1f}/s, skipped {sp.skipped or 0:,}, failed+skipped+unsent {100 * bad_fraction:.3f} %, "
        f"lateness p99 {_late99(sp):.3f} ms, probe_app CPU {sp.server_cpu_pct:.0f}%"
    )
    if ceiling is not None and ceiling.requests_per_sec < CEILING_HEADROOM * SUSTAIN_RATE:
        detail += f" - probe_app is near its ceiling (wrk: {ceiling.requests_per_sec:,.0f} req/s)"
    elif sp.server_cpu_pct >= SERVER_BOUND_PCT:
        detail += " - probe_app near 100% of a core: it may be the bottleneck"
    return Goal(goal, PASS if ok else FAIL, detail)


def cpu_goal(points: Sequence[Point]) -> Goal:
    goal = f"CPU per request <= {CPU_RATIO_MAX:g}x vegeta's at the same rate"
    ratios = [(p.mode, p.rate, r) for p in points if p.tool == "ours" and (r := cpu_ratio(points, p.mode, p.rate)) is not None]
    if not ratios:
        return Goal(goal, NOT_MEASURED, "")
    result = FAIL if any(r > CPU_RATIO_MAX for _, _, r in ratios) else PASS
    return Goal(goal, result, ", ".join(f"{m}@{rate}: {r:.2f}x" for m, rate, r in ratios))


def check(points: Sequence[Point], ceiling: Ceiling | None) -> list[Goal]:
    return [lateness_goal(points), sustain_goal(points, ceiling), cpu_goal(points)]


def notes(points: Sequence[Point], ceiling: Ceiling | None, loadavg: tuple[float, float], cpus: int) -> list[str]:
    """What the reader must know to trust the tables: the app's ceiling, app-bound points, a busy machine."""
    out = []
    if ceiling is not None:
        out.append(
            f"probe_app ceiling (wrk, keepalive, 1 process): {ceiling.requests_per_sec:,.0f} req/s "
            f"at {ceiling.server_cpu_pct:.0f}% of one core"
        )
    hot = [f"{p.tool} {p.mode}@{p.rate}" for p in points if p.server_cpu_pct >= SERVER_BOUND_PCT]
    if hot:
        out.append(f"probe_app at >= {SERVER_BOUND_PCT:g}% of a core (likely the bottleneck) in: {', '.join(hot)}")
    if max(loadavg) > 0.75 * cpus:
        out.append(f"machine was busy (load average {loadavg[0]:.2f} -> {loadavg[1]:.2f} on {cpus} CPUs): numbers are not representative")
    return out


# --------------------------------------------------------------------------- tables

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


def _f(x: float | None, nd: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{nd}f}"


def row(p: Point, points: Sequence[Point]) -> list[str]:
    fails = f"{p.failed:,}"
    if p.skipped:
        fails += f" (+{p.skipped:,} skipped)"
    if p.unsent:
        fails += f" (+{p.unsent:,} unsent)"
    return [
        p.tool,
        p.mode,
        f"{p.rate:,}",
        _f(p.achieved_rate),
        _f(p.lateness.p50 if p.lateness else None, 3),
        _f(p.lateness.p99 if p.lateness else None, 3),
        fails,
        _f(p.cpu_ms_per_1k),
        _f(cpu_ratio(points, p.mode, p.rate), 2) if p.tool == "ours" else "",
        f"{p.server_cpu_pct:.0f}%",
    ]


def points_table(shown: Sequence[Point], points: Sequence[Point]) -> str:
    """`shown` as rows; ratios come from all `points`."""
    return tabulate([row(p, points) for p in shown], headers=HEADERS, tablefmt="github", disable_numparse=True)


def ceiling_table(c: Ceiling) -> str:
    rows = [["wrk", "keepalive", f"{c.requests_per_sec:,.1f}", c.errors, f"{c.server_cpu_pct:.0f}%"]]
    return tabulate(rows, headers=["tool", "mode", "achieved rate (max)", "errors", "probe_app CPU"], tablefmt="github")


def goals_table(goals: Sequence[Goal]) -> str:
    return tabulate([[g.goal, g.result, g.detail] for g in goals], headers=["goal", "result", "detail"], tablefmt="github")
