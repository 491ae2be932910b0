"""Folding trials into a verdict: claims are per rollout (k of n, an exact bound or interval on the chance that a
rollout loses), a failed rollout is never a zero, an excluded trial that saw real failures counts as a rollout that
lost (the review's cases, /work/shared/notes/review-verdicts.md section 2), and runs made with different options are
never folded together."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_analysis import BASE, records, run

from harness.gate import Budget
from harness.model import Status
from harness.records import SKIPPED
from harness.report import compare_table, lost_per_rollout_text, p_lose_text
from harness.results import Provenance, RunResult
from harness.stats import t_ppf
from harness.verdict import Verdict, fold, fold_cells

ZERO = run(records())


def lossy(n_failed: int, trial: int = 1, kind: str = "refused") -> RunResult:
    return replace(run(records({400 + i: kind for i in range(n_failed)})), trial=trial)


def zeros(*trials: int) -> list[RunResult]:
    return [replace(ZERO, trial=t) for t in trials]


def failed(trial: int) -> RunResult:
    return replace(BASE, status=Status.FAILED, error="rollout did not complete", trial=trial)


def test_a_failed_rollout_is_excluded_not_averaged_as_zero() -> None:
    c = fold([lossy(100), lossy(100, 2), failed(3)])
    assert c.verdict is Verdict.LOSSY and (c.used, c.trials, c.rollouts, c.rollouts_lost) == (2, 3, 2, 2)
    assert c.excluded == {"failed": 1} and c.why == "2 of 2 rollouts lost requests"
    assert c.lost_per_rollout_mean == 100 and (c.lost_min, c.lost_max) == (100, 100)
    assert c.fail_pct_mean == pytest.approx(100 * 100 / 600)
    assert c.p_lose_ci == pytest.approx((0.025**0.5, 1.0))  # 2 of 2: Clopper-Pearson, lower end 0.025^(1/n)


def test_lossless_is_a_bound_on_the_chance_that_a_rollout_loses() -> None:
    c = fold(zeros(1, 2, 3))
    assert c.verdict is Verdict.LOSSLESS and (c.rollouts, c.rollouts_lost) == (3, 0) and c.why == "0 of 3 rollouts lost a request"
    assert c.p_lose_upper == pytest.approx(1 - 0.05 ** (1 / 3)) and p_lose_text(c) == "≤ 64 %"  # 63.2 %, rounded up
    assert c.p_lose_ci is None and c.lost_per_rollout_mean == 0
    assert p_lose_text(fold(zeros(*range(1, 30)))) == "≤ 9.9 %" and p_lose_text(fold(zeros(*range(1, 60)))) == "≤ 5.0 %"
    stalled = {i: 4.4 for i in range(400, 440)}
    blind = replace(run(records(starts=stalled)), trial=2)
    assert blind.status is Status.UNRELIABLE
    one = fold([ZERO, blind, failed(3)])
    assert one.verdict is Verdict.INCONCLUSIVE and "1/3" in one.why and one.rollouts == 1 and one.p_lose_upper is None


def test_lossy_states_k_of_n_with_its_exact_interval() -> None:
    c = fold([lossy(20), lossy(40, 2), lossy(30, 3), *zeros(4, 5, 6, 7, 8, 9, 10)])
    assert (c.rollouts, c.rollouts_lost) == (10, 3) and c.p_lose_ci == pytest.approx((0.06674, 0.65245), abs=1e-5)
    assert p_lose_text(c) == "3/10: 6.6-66 %"  # rounded outward
    half = t_ppf(0.975, 9) * (2090 / 9) ** 0.5 / 10**0.5  # squared deviations from 9: 121 + 961 + 441 + 7 × 81
    assert c.lost_per_rollout_mean == 9 and c.lost_per_rollout_ci == pytest.approx((0.0, 9 + half), abs=0.01)


def test_one_reset_in_thirty_rollouts_is_not_printed_as_zero() -> None:
    c = fold([replace(lossy(1, kind="reset"), trial=1), *zeros(*range(2, 31))])
    assert c.verdict is Verdict.LOSSY and (c.rollouts_lost, c.rollouts) == (1, 30)
    assert p_lose_text(c) == "1/30: 0.084-18 %"
    half = t_ppf(0.975, 29) * (1 / 30) ** 0.5  # sd of 1 one and 29 zeros is sqrt(1/30)
    assert c.lost_per_rollout_ci == pytest.approx((0.0, 1 / 30 + half / 30**0.5))
    assert lost_per_rollout_text(c) == "0.0333 [0, 0.102]"
    row = next(ln for ln in compare_table([lossy(1, kind="reset"), *zeros(*range(2, 31))]).splitlines() if "lossy" in ln)
    assert "| 1/30 lost " in row and "0.00" not in row


def test_identical_lossy_rollouts_say_they_have_no_spread() -> None:
    c = fold([lossy(5), lossy(5, 2), lossy(5, 3)])
    assert c.lost_per_rollout_ci == (5.0, 5.0) and lost_per_rollout_text(c) == "5 (same in all 3)"
    assert any("every rollout lost 5: no spread seen" in n for n in c.notes)


def test_the_mean_interval_is_student_t_beyond_ten_rollouts() -> None:
    runs = [lossy(10 + (t % 3), t) for t in range(1, 16)]  # 15 rollouts losing 10, 11 or 12: 14 df, t = 2.145
    c = fold(runs)
    half = 2.1448 * (10 / 14) ** 0.5 / 15**0.5
    assert c.lost_per_rollout_ci == pytest.approx((11 - half, 11 + half), abs=1e-3)


# --- excluded trials: the review's reproductions ------------------------------------------------------------


def noisy_window(kind: str, n: int = 50) -> RunResult:
    """A baseline connect timeout (noisy) and `n` failures of `kind` in the window."""
    return run(records({100: "connect_timeout", **{400 + i: kind for i in range(n)}}))


def test_an_excluded_trial_with_only_timeouts_is_no_evidence() -> None:
    t1 = noisy_window("connect_timeout")
    assert t1.status is Status.NOISY and t1.lost == 50
    c = fold([t1, *zeros(2, 3)])
    assert c.verdict is Verdict.LOSSLESS and c.why == "0 of 2 rollouts lost a request" and (c.rollouts, c.used) == (2, 2)
    assert c.p_lose_upper == pytest.approx(1 - 0.05**0.5) and Budget(max_failures=0).breach(c) == ""
    assert "noisy t1: 1 failed in the baseline" in c.notes[0]
    alone = fold([t1, *zeros(2)])  # 1 usable zero of 2 trials: not enough
    assert alone.verdict is Verdict.INCONCLUSIVE and alone.rollouts == 1


def test_an_excluded_trial_with_real_failures_makes_the_cell_lossy() -> None:
    t1 = noisy_window("refused")
    assert t1.status is Status.NOISY
    c = fold([t1, *zeros(2, 3)])
    assert c.verdict is Verdict.LOSSY and (c.rollouts_lost, c.rollouts, c.used) == (1, 3, 2)
    assert c.why == "1 of 3 rollouts lost requests (1 of them excluded trials with failures other than timeouts)"
    assert (c.lost_min, c.lost_max) == (0, 50) and c.by_kind == {"refused": pytest.approx(50 / 3)}
    assert "noisy t1 (counts as a rollout that lost: refused 50)" in c.notes[0]
    assert Budget(max_failures=0).breach(c) == "lost 50 > 0"
    assert Budget(max_failures=40).breach(c) == "lost 50 > 40" and Budget(max_failures=50).breach(c) == ""
    assert Budget(max_fail_pct=5).breach(c) == "lost 8.33 % > 5 %"  # 50 of 600


def test_only_the_real_kinds_of_an_excluded_trial_count() -> None:
    mixed = run(records({100: "connect_timeout", **{400 + i: "connect_timeout" for i in range(30)}, 450: "reset", 451: "http_5xx"}))
    c = fold([mixed, *zeros(2, 3)])
    assert c.verdict is Verdict.LOSSY and c.lost_max == 2 and c.by_kind == {"http_5xx": pytest.approx(1 / 3), "reset": pytest.approx(1 / 3)}
    assert Budget(max_failures=1).breach(c) == "lost 2 > 1" and Budget(max_failures=2).breach(c) == ""


def test_a_skipped_request_and_read_timeouts_are_no_evidence_but_refusals_are() -> None:
    timeouts = run(records({500: SKIPPED, **{400 + i: "read_timeout" for i in range(40)}}))
    assert timeouts.status is Status.UNRELIABLE and timeouts.lost == 40
    c = fold([timeouts, *zeros(2, 3)])
    assert c.verdict is Verdict.LOSSLESS and c.rollouts == 2 and Budget(max_failures=0).breach(c) == ""
    refusals = run(records({500: SKIPPED, **{400 + i: "refused" for i in range(40)}}))
    lost = fold([refusals, *zeros(2, 3)])
    assert lost.verdict is Verdict.LOSSY and lost.rollouts_lost == 1 and Budget(max_failures=0).breach(lost) == "lost 40 > 0"


def test_runs_with_different_options_are_not_folded() -> None:
    a = lossy(5)
    b = replace(lossy(7), provenance=Provenance({"rate": 400.0}, {}, {}))
    assert len(fold_cells([a, b])) == 2
    table = compare_table([a, b])
    assert table.splitlines()[0].split("|")[5].strip() == "options"


def test_results_made_from_different_manifests_or_code_are_not_folded_and_say_so() -> None:
    """The provenance key holds the content hashes: the same variant deployed from changed manifests (or measured by
    changed code) makes another row, labelled with the hash that differs (unless an option that differs tells the rows
    apart already); different variants' hashes, which differ by nature, add no options column."""

    def made(r: RunResult, variant: str, source: str = "s1") -> RunResult:
        return replace(r, provenance=replace(r.provenance, content={"source": source, "variant": variant, "commit": "c"}))

    naive, best = made(lossy(5), "v1"), made(replace(ZERO, variant="best"), "v9")
    assert len(fold_cells([naive, best])) == 2 and "options" not in compare_table([naive, best]).splitlines()[0]
    edited = made(replace(lossy(7), trial=2), "v2")
    assert len(fold_cells([naive, edited])) == 2
    assert "variant=v1" in compare_table([naive, edited]) and "variant=v2" in compare_table([naive, edited])
    recoded = made(replace(lossy(7), trial=2), "v1", source="s2")
    assert len(fold_cells([naive, recoded])) == 2 and "source=s2" in compare_table([naive, recoded])
    recommitted = replace(recoded, provenance=replace(recoded.provenance, content={"source": "s1", "variant": "v1", "commit": "d"}))
    assert len(fold_cells([naive, recommitted])) == 1  # the same code under another commit is the same code
    # an option that changes the manifests too (--via adds an Ingress) names the row alone: its hash adds nothing
    via = replace(edited, provenance=replace(edited.provenance, options=edited.provenance.options | {"via": "ingress"}))
    labels = [ln.split("|")[5].strip() for ln in compare_table([naive, via]).splitlines()[2:]]
    assert sorted(labels) == ["-", "via=ingress"]  # a default is not recorded, nor named


def test_compare_table_puts_the_verdict_first() -> None:
    zero = replace(ZERO, variant="best")
    runs = [zero, replace(zero, trial=2), lossy(4), replace(lossy(6), trial=2), failed(3)]
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in compare_table(runs).splitlines()]
    assert rows[0][:9] == ["verdict", "variant", "trigger", "mode", "used", "rollouts", "P(rollout loses)", "lost/rollout", "lost"]
    assert rows[2][:2] == ["lossless", "best"] and rows[2][4:9] == ["2/2", "0/2 lost", "≤ 78 %", "0", "0"]
    assert rows[3][:2] == ["lossy", "naive"] and rows[3][4:9] == ["2/3", "2/2 lost", "2/2: 15-100 %", "5 [0, 17.7]", "4-6"]
    assert "failed t3: rollout did not complete" in rows[3][-1]


def test_a_certification_gate_passes_only_the_claim_reached() -> None:
    """certify 50 % needs 5 zero rollouts (1 - 0.05^(1/5) = 45 %): 5 pass, 4 do not (53 %), a lossy cell never does."""
    gate = Budget(certify=0.5)
    assert gate.active and gate.describe() == "P(a rollout loses) ≤ 50 % shown"
    assert gate.breach(fold(zeros(1, 2, 3, 4, 5))) == ""
    assert gate.breach(fold(zeros(1, 2, 3, 4))) == "not certified: 0 of 4 rollouts lost a request shows ≤ 53 %, not ≤ 50 %"
    assert gate.breach(fold([*zeros(1, 2, 3, 4, 5), lossy(3, 6)])) == "not certified: 1 of 6 rollouts lost requests"
