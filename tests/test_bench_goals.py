"""The benchmark's goal checks (bench/goals.py) on hand-made points: each goal passes, fails and reports
"not measured" when it should, and what is not sent counts against us."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench import goals
from bench.tools import Ceiling, Percentiles, Point


def ours(mode: str = "keepalive", rate: int = 500, late99: float = 1.0, **kw: Any) -> Point:
    n = rate * 10
    base = Point(
        tool="ours",
        mode=mode,
        rate=rate,
        scheduled=n,
        sent=n,
        ok=n,
        achieved_rate=float(rate),
        latency=Percentiles(0.5, 2.0, 5.0),
        cpu_seconds=n * 0.5e-3,  # 500 ms per 1k
        wall_seconds=10.0,
        server_cpu_pct=40.0,
        lateness=Percentiles(0.3, late99, 3.0),
        skipped=0,
    )
    return replace(base, **kw)


def vegeta(mode: str = "keepalive", rate: int = 500, cpu_ms_per_1k: float = 400.0) -> Point:
    n = rate * 10
    return Point("vegeta", mode, rate, n, n, n, float(rate), Percentiles(0.5, 2.0, 5.0), n * cpu_ms_per_1k / 1e6, 10.0, 40.0)


def ceiling(rps: float) -> Ceiling:
    return Ceiling(connections=32, requests=int(rps * 10), requests_per_sec=rps, errors=0, cpu_seconds=9.0, server_cpu_pct=85.0, output="")


def test_point_counts_what_was_not_sent() -> None:
    p = ours(rate=1000, sent=9000, ok=8990, skipped=600)
    assert (p.scheduled, p.failed, p.unsent) == (10_000, 10, 400)
    assert p.cpu_ms_per_1k == 1e6 * p.cpu_seconds / 9000
    assert vegeta().skipped is None and vegeta().lateness is None


def test_lateness_goal() -> None:
    assert goals.lateness_goal([]).result == goals.NOT_MEASURED
    assert goals.lateness_goal([ours(rate=5000, late99=50.0)]).result == goals.NOT_MEASURED  # above the goal's rates
    assert goals.lateness_goal([ours("new", 2000, late99=50.0)]).result == goals.NOT_MEASURED  # new: up to 1,000 only
    assert goals.lateness_goal([ours("new", 1000), ours("keepalive", 4000, late99=1.9)]).result == goals.PASS
    assert goals.lateness_goal([ours("keepalive")]).result == goals.PARTIAL
    failed = goals.lateness_goal([ours("new"), ours("keepalive", 4000, late99=2.5), vegeta()])
    assert (failed.result, failed.detail) == (goals.FAIL, "keepalive@4000: 2.500 ms")


def test_sustain_goal() -> None:
    assert goals.sustain_goal([ours(rate=2000)], None).result == goals.NOT_MEASURED
    good = ours(rate=5000, late99=5.0)
    assert goals.sustain_goal([good], ceiling(7000)).result == goals.PASS
    for bad in (
        replace(good, achieved_rate=4900.0),  # below 99 % of the target
        replace(good, ok=good.scheduled - 51),  # 51 of 50,000 failed: above 0.1 %
        replace(good, sent=good.scheduled - 51, ok=good.scheduled - 51),  # 51 never sent counts the same
        replace(good, sent=good.scheduled - 1, ok=good.scheduled - 1, skipped=1),  # one skipped: not "without skips"
        replace(good, lateness=Percentiles(1.0, 10.5, 20.0)),  # keeping the average by bursting
    ):
        assert goals.sustain_goal([bad], None).result == goals.FAIL, bad
    assert goals.sustain_goal([replace(good, ok=good.scheduled - 50)], None).result == goals.PASS
    assert "near its ceiling (wrk: 5,500 req/s)" in goals.sustain_goal([good], ceiling(5500)).detail
    assert "may be the bottleneck" in goals.sustain_goal([replace(good, server_cpu_pct=95.0)], None).detail


def test_cpu_goal_compares_the_same_mode_and_rate() -> None:
    points = [ours("new", 500), vegeta("new", 500, 400.0), ours("keepalive", 500), vegeta("keepalive", 500, 370.0)]
    assert goals.cpu_ratio(points, "new", 500) == 1.25
    assert goals.cpu_ratio(points, "new", 1000) is None
    result = goals.cpu_goal(points)
    assert (result.result, result.detail) == (goals.FAIL, "new@500: 1.25x, keepalive@500: 1.35x")
    assert goals.cpu_goal(points[:2]).result == goals.PASS
    assert goals.cpu_goal([ours()]).result == goals.NOT_MEASURED
    assert [g.result for g in goals.check(points[:2], None)] == [goals.PARTIAL, goals.NOT_MEASURED, goals.PASS]


def test_table_rows() -> None:
    points = [ours("new", 500, skipped=20, sent=4970, ok=4960, cpu_seconds=2.485), vegeta("new", 500, 400.0)]
    ours_row, veg_row = (goals.row(p, points) for p in points)
    assert ours_row[4:9] == ["0.300", "1.000", "10 (+20 skipped) (+10 unsent)", "500.0", "1.25"]
    assert veg_row[4:9] == ["n/a", "n/a", "0", "400.0", ""]
    assert goals.points_table(points, points).count("\n") == 3  # header, rule, two rows


def test_notes_flag_a_busy_machine_and_a_hot_app() -> None:
    assert goals.notes([ours()], None, (0.2, 0.4), cpus=2) == []
    busy = goals.notes([ours(server_cpu_pct=95.0)], ceiling(5000), (0.5, 1.8), cpus=2)
    assert len(busy) == 3 and busy[1].endswith("ours keepalive@500") and "0.50 -> 1.80 on 2 CPUs" in busy[2]
