"""Folding trials into a verdict: only used trials count, a failed rollout is never a zero, intervals and bounds
are the documented ones, and runs made with different options are never folded together."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_analysis import BASE, records, run

from harness.report import compare_table
from harness.results import Provenance, RunResult, Status
from harness.verdict import Verdict, fold, fold_cells, mean_ci, upper_bound_zero


def lossy(n_failed: int, trial: int = 1) -> RunResult:
    return replace(run(records({400 + i: "refused" for i in range(n_failed)})), trial=trial)


def failed(trial: int) -> RunResult:
    return replace(BASE, status=Status.FAILED, error="rollout did not complete", trial=trial)


def test_a_failed_rollout_is_excluded_not_averaged_as_zero() -> None:
    c = fold([lossy(100), lossy(100, 2), failed(3)])
    assert c.verdict is Verdict.LOSSY and (c.used, c.trials) == (2, 3)
    assert c.excluded == {"failed": 1}
    assert c.lost_mean == 100 and (c.lost_min, c.lost_max) == (100, 100)
    assert c.fail_pct_mean == pytest.approx(100 * 100 / 600)


def test_lossless_needs_two_used_zero_trials_and_gives_the_rule_of_three_bound() -> None:
    zero = run(records())
    c = fold([zero, replace(zero, trial=2), replace(zero, trial=3)])
    assert c.verdict is Verdict.LOSSLESS and c.used == 3
    assert c.upper_bound_pct == pytest.approx(100 * (1 - 0.05 ** (1 / (3 * 600))))
    assert c.upper_bound_pct == pytest.approx(300 / (3 * 600), rel=0.01)  # ≈ 3/N
    stalled = {i: 4.4 for i in range(400, 440)}
    blind = replace(run(records(starts=stalled)), trial=2)
    assert blind.status is Status.UNRELIABLE
    one = fold([zero, blind, failed(3)])
    assert one.verdict is Verdict.INCONCLUSIVE and "1/3" in one.why


def test_excluded_trials_still_show_failures_a_stall_cannot_fake() -> None:
    noisy = run(records({100: "connect_timeout", 500: "refused", 501: "connect_timeout"}))
    assert noisy.status is Status.NOISY
    c = fold([lossy(3), noisy])
    assert c.excluded_real == {"refused": 1} and c.baseline_failed == 1


def test_interval_is_student_t() -> None:
    lo, hi = mean_ci([1.0, 2.0, 3.0]) or (0, 0)
    assert (lo, hi) == pytest.approx((max(0.0, 2 - 4.303 / 3**0.5), 2 + 4.303 / 3**0.5))
    assert mean_ci([5.0]) is None
    assert upper_bound_zero(3000) == pytest.approx(0.000998, rel=0.01)


def test_runs_with_different_options_are_not_folded() -> None:
    a = lossy(5)
    b = replace(lossy(7), provenance=Provenance({"rate": 400.0}, {}, {}))
    assert len(fold_cells([a, b])) == 2
    table = compare_table([a, b])
    assert table.splitlines()[0].split("|")[5].strip() == "options"


def test_compare_table_puts_the_verdict_first() -> None:
    zero = replace(run(records()), variant="best")
    runs = [zero, replace(zero, trial=2), lossy(4), replace(lossy(6), trial=2), failed(3)]
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in compare_table(runs).splitlines()]
    assert rows[0][:7] == ["verdict", "variant", "trigger", "mode", "used", "lost", "loss"]
    assert rows[2][:2] == ["lossless", "best"] and rows[2][4] == "2/2" and rows[2][6].startswith("0 (≤ ")
    assert rows[3][:2] == ["lossy", "naive"] and rows[3][4:6] == ["2/3", "4-6"] and "[" in rows[3][6]
    assert "failed t3: rollout did not complete" in rows[3][-1]


async def test_stop_early_skips_trials_that_cannot_change_a_lossy_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounting only (a fake run_cell): naive's first trial loses 30 refused, so its trials 2 and 3 are not run and
    the cell says why; best-practice loses nothing and runs all three; a trial with only timeouts never settles."""
    from harness import experiment
    from harness.actions import Trigger
    from harness.experiment import CellSpec, RunOptions, run_matrix
    from harness.load import ConnMode

    outcome = {"naive": {400 + i: "refused" for i in range(30)}, "best-practice": {}, "readiness": {400: "connect_timeout"}}
    ran: list[str] = []

    async def fake_run_cell(target: object, cell: CellSpec, opts: RunOptions, **kw: object) -> RunResult:
        ran.append(cell.name)
        return replace(run(records(outcome[cell.variant])), name=cell.name, variant=cell.variant, trial=cell.trial)

    monkeypatch.setattr(experiment, "run_cell", fake_run_cell)
    cells = [CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW, t) for t in (1, 2, 3) for v in outcome]
    results = await run_matrix(None, cells, RunOptions(trials=3, stop_early=True))  # type: ignore[arg-type]
    assert [n.split("__")[0] for n in ran].count("naive") == 1
    assert [n.split("__")[0] for n in ran].count("best-practice") == 3 and [n.split("__")[0] for n in ran].count("readiness") == 3
    naive = fold([r for r in results if r.variant == "naive"])
    assert naive.verdict is Verdict.LOSSY and naive.trials == 1
    assert any("stopped after trial 1: lossy whatever follows (30 refused" in n for n in naive.notes)
    assert len(await run_matrix(None, cells, RunOptions(trials=3))) == 9  # type: ignore[arg-type]


async def test_parallel_cells_overlap_and_come_back_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounting only (a fake run_cell whose cells take different times): with parallel=2 two cells are in flight
    at once, never more; results come back in the cells' order; an error in one worker surfaces as itself."""
    import asyncio

    from harness import experiment
    from harness.actions import Trigger
    from harness.errors import ClusterError
    from harness.experiment import CellSpec, RunOptions, run_matrix
    from harness.load import ConnMode

    in_flight, peak = 0, 0

    async def fake_run_cell(target: object, cell: CellSpec, opts: RunOptions, **kw: object) -> RunResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05 if cell.variant == "slow" else 0.01)
        in_flight -= 1
        if cell.variant == "broken":
            raise ClusterError("the API server went away")
        return replace(run(records()), name=cell.name, variant=cell.variant, trial=cell.trial)

    monkeypatch.setattr(experiment, "run_cell", fake_run_cell)
    cells = [CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW, t) for t in (1, 2) for v in ("slow", "a", "b")]
    results = await run_matrix(None, cells, RunOptions(parallel=2))  # type: ignore[arg-type]
    assert peak == 2 and [r.name for r in results] == [c.name for c in cells]
    with pytest.raises(ClusterError, match="went away"):
        await run_matrix(None, [*cells, CellSpec("broken", Trigger.SET_IMAGE, ConnMode.NEW, 1)], RunOptions(parallel=3))  # type: ignore[arg-type]


async def test_the_next_cell_is_set_up_during_the_tail_and_released_when_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounting only (fake set-up and measurement around the real run_cell and run_matrix): the next cell's set-up
    starts when the current cell's tail does; a trial made unnecessary by the cell measured meanwhile (stop_early) is
    released unmeasured; every set-up is released once, also when a measurement fails; setup_ahead_s says how much
    of a set-up was hidden in the tail before it. With ahead off, no set-up overlaps a measurement."""
    import asyncio

    from harness import experiment
    from harness.actions import Trigger
    from harness.errors import ClusterError
    from harness.experiment import CellSpec, Prepared, RunOptions, run_matrix
    from harness.load import ConnMode

    outcome = {"naive": {400 + i: "refused" for i in range(30)}, "best": {}, "broken": {}}
    events: list[tuple[str, str]] = []

    async def fake_set_up(target: object, cell: CellSpec, opts: RunOptions, stack: object, label: str) -> Prepared:
        events.append((f"set-up{' ahead' if label else ''}", cell.name))
        stack.callback(lambda: events.append(("released", cell.name)))  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)
        base = replace(run(records(outcome[cell.variant])), name=cell.name, variant=cell.variant, trial=cell.trial, setup_s=0.02)
        return Prepared(None, None, None, None, None, base)  # type: ignore[arg-type]

    async def fake_measure(cell: CellSpec, opts: RunOptions, p: Prepared, on_tail: object) -> RunResult:
        events.append(("measure", cell.name))
        await asyncio.sleep(0.01)
        if on_tail is not None:
            on_tail()  # type: ignore[operator]
        await asyncio.sleep(0.05)  # the tail, longer than a set-up
        if cell.variant == "broken":
            raise ClusterError("the API server went away")
        events.append(("measured", cell.name))
        return p.base

    monkeypatch.setattr(experiment, "_set_up", fake_set_up)
    monkeypatch.setattr(experiment, "_measure", fake_measure)
    cells = [CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW, t) for v in ("naive", "best") for t in (1, 2)]
    n1, n2, b1, b2 = (c.name for c in cells)
    results = await run_matrix(None, cells, RunOptions(trials=2, stop_early=True))  # type: ignore[arg-type]
    assert events == [
        ("set-up", n1), ("measure", n1), ("set-up ahead", n2), ("measured", n1), ("released", n1),
        ("released", n2),  # naive's first trial settled it: its second trial, set up meanwhile, is not measured
        ("set-up", b1), ("measure", b1), ("set-up ahead", b2), ("measured", b1), ("released", b1),
        ("measure", b2), ("measured", b2), ("released", b2),
    ]  # fmt: skip
    assert [r.name for r in results] == [n1, b1, b2]
    assert [r.setup_ahead_s for r in results] == [0.0, 0.0, 0.02]

    events.clear()
    await run_matrix(None, cells, RunOptions(trials=2, ahead=False))  # type: ignore[arg-type]
    assert [e for e in events if e[0].startswith("set-up")] == [("set-up", c.name) for c in cells]
    assert all(e[0] != "set-up ahead" for e in events) and events.count(("released", b2)) == 1

    events.clear()
    with pytest.raises(ClusterError, match="went away"):
        await run_matrix(None, [CellSpec("broken", Trigger.SET_IMAGE, ConnMode.NEW), *cells], RunOptions(trials=2))  # type: ignore[arg-type]
    assert [e for e in events if e[0] == "released"] == [("released", "broken__set-image__new__t1"), ("released", n1)]
