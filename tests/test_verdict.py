"""Folding trials into a verdict: only used trials count, a failed rollout is never a zero, intervals and bounds
are the documented ones, and runs made with different options are never folded together."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_analysis import BASE, records, run

from harness.model import Status
from harness.report import compare_table
from harness.results import Provenance, RunResult
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
