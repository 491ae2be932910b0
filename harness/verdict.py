"""Fold the trials of one cell (variant × trigger × mode × options) into a verdict with its uncertainty.

The unit of evidence is the rollout, not the request: requests inside one rollout fail together (loss comes in
bursts), rollouts are the independent trials. No figure here treats the requests of one rollout as independent.

Which trials count as rollouts (n), and which of them lost (k), given the cell's background (harness.background:
HTTP errors at a steady rate, seen in the baselines; none when no baseline saw one):
- a `used` trial counts, with every request it lost in its window (disruption + tail); it lost when those failures
  go beyond the background (any failure at all when there is none);
- a `noisy` or `unreliable` trial whose window holds failures a stalled generator cannot fake (every kind but
  classify.TIMER_KINDS: refused, no_route, reset, idle_close, HTTP 5xx, ...) beyond the background counts as a rollout that
  lost, with those failures only (its timeouts are not evidence): an excluded trial is never evidence of safety;
- any other excluded trial (only timeouts in its window, only background, or nothing) is no evidence either way and
  is not counted, nor is a `failed` trial (the rollout errored, nothing was measured).

Verdicts:
- lossy: k > 0. Printed with k of n, the exact two-sided 95 % (Clopper-Pearson) interval on the probability that
  a rollout loses requests, and the lost requests per rollout (mean, Student-t 95 % interval over the n rollouts).
- lossless: k = 0 with at least min(2, trials) rollouts counted. Printed with "0 of n" and the exact one-sided
  95 % upper bound on the probability that a rollout loses anything, 1 - 0.05**(1/n) (≈ 3/n: 29 → 9.8 %).
- inconclusive: k = 0 with fewer rollouts counted than that.
With a background, "loses" means loses beyond it, and `why` says so: "0 of 3 rollouts lost a request beyond a
background of 0.05 % (≤ 0.088 %)".

The two claims are each exact, but which one is printed depends on k: over both, at a true probability just above
the zero bound, the printed range covers it in at least ~93 % of cells (tests/test_coverage.py).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from harness.background import Background
from harness.classify import TIMER_KINDS
from harness.model import Phase, Status
from harness.results import RunResult
from harness.stats import clopper_pearson, mean_ci, upper_bound_zero


class Verdict(StrEnum):
    LOSSLESS = "lossless"
    LOSSY = "lossy"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class CellVerdict:
    variant: str
    trigger: str
    mode: str
    key: str
    """Provenance key of the runs (options, cluster settings, harness version)."""
    verdict: Verdict
    why: str
    trials: int
    used: int
    excluded: dict[str, int]
    """Status -> trials left out of the `used` count."""
    rollouts: int
    """n: trials that count as rollouts (used ones, and excluded ones whose window holds real-kind failures)."""
    rollouts_lost: int
    """k: of those, rollouts that lost at least one request (with a background: more than it explains)."""
    p_lose_upper: float | None
    """lossless only: one-sided 95 % upper bound on the probability that a rollout loses requests (0-1)."""
    p_lose_ci: tuple[float, float] | None
    """lossy only: two-sided 95 % Clopper-Pearson interval on the probability that a rollout loses requests (0-1)."""
    lost_min: int
    lost_max: int
    """Fewest and most requests lost by one counted rollout (an excluded one: its real-kind failures only), background
    errors included: these count what failed, the verdict and k whether it went beyond the background."""
    lost_per_rollout_mean: float
    """Mean requests lost per counted rollout."""
    lost_per_rollout_ci: tuple[float, float] | None
    """Two-sided 95 % Student-t interval of that mean over the rollouts (n - 1 df); None with fewer than 2. It assumes
    rollouts independent, not normal: with bursty, mostly-zero losses and few rollouts it is approximate."""
    fail_pct_mean: float
    fail_pct_max: float
    """Lost requests of a counted rollout in % of the requests sent in its window: mean and worst rollout."""
    fail_pct_ci: tuple[float, float] | None
    """95 % Student-t interval of the mean fail % over the counted rollouts (None with fewer than 2)."""
    by_kind: dict[str, float]
    """Mean lost requests per kind per counted rollout."""
    excluded_real: dict[str, int]
    """Refused/no_route/reset/HTTP failures (summed) in the disruption+tail of excluded, non-failed trials."""
    baseline_failed: int
    """Failures in the baseline phase, summed over all trials (background errors, and why trials were noisy)."""
    background: Background
    """The cell's background error rate, pooled from its used trials' baselines (failures 0 and upper None: none)."""
    max_gap_ms: float
    rollout_s: float
    """Mean trigger-to-settled time over the trials that ran."""
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Rollout:
    """How one trial counts as a rollout of its cell."""

    failures: dict[str, int]
    """Its counted failures by kind: a used trial's every window failure, an excluded one's real kinds only."""
    lost: bool
    """It lost requests beyond the cell's background (with none: it lost any)."""


def counted(r: RunResult, background: Background) -> Rollout | None:
    """How a trial counts as a rollout of a cell with this background, or None when it is no evidence either way."""
    if r.status is Status.FAILED:
        return None
    used = r.status is Status.USED
    failures = r.lost_by_kind if used else {k: n for k, n in r.lost_by_kind.items() if k not in TIMER_KINDS and n}
    lost = background.beyond(failures, r.window_sent)
    return Rollout(failures, lost) if used or lost else None


def rollouts(runs: list[RunResult]) -> list[Rollout | None]:
    """Each trial of one cell as a rollout (None: not counted), judged against the background of them all."""
    background = Background.of(runs)
    return [counted(r, background) for r in runs]


@dataclass(frozen=True)
class Claim:
    """What n rollouts show; the fields mean what CellVerdict's of the same names do."""

    verdict: Verdict
    rollouts: int
    rollouts_lost: int
    p_lose_upper: float | None
    p_lose_ci: tuple[float, float] | None


def claim(lost: Sequence[int], trials: int) -> Claim:
    """The verdict and the bound or interval on P(a rollout loses) from whether each counted rollout lost (nonzero:
    it did), out of `trials` run (counted or not)."""
    n, k = len(lost), sum(1 for x in lost if x)
    if k:
        return Claim(Verdict.LOSSY, n, k, None, clopper_pearson(k, n))
    if n >= min(2, trials):
        return Claim(Verdict.LOSSLESS, n, 0, upper_bound_zero(n), None)
    return Claim(Verdict.INCONCLUSIVE, n, 0, None, None)


def _why(c: Claim, used: int, trials: int, counted_excluded: int, background: Background) -> str:
    beyond = f" beyond a background of {background.text()}" if background.upper is not None else ""
    if c.verdict is Verdict.LOSSY:
        extra = f" ({counted_excluded} of them excluded trials with failures other than timeouts)" if counted_excluded else ""
        return f"{c.rollouts_lost} of {c.rollouts} rollouts lost requests{beyond}{extra}"
    if c.verdict is Verdict.LOSSLESS:
        return f"0 of {c.rollouts} rollouts lost a request{beyond}"
    return f"{used}/{trials} trials usable; need {min(2, trials)}"


def _note(r: RunResult, counted: Rollout | None) -> str:
    how = f" (counts as a rollout that lost: {', '.join(f'{k} {n}' for k, n in sorted(counted.failures.items()))})" if counted else ""
    return f"{r.status.value} t{r.trial}{how}: {'; '.join(r.reasons) or r.error}"


def fold(runs: list[RunResult]) -> CellVerdict:
    first = runs[0]
    used = [r for r in runs if r.status is Status.USED]
    measured = [r for r in runs if r.status is not Status.FAILED]
    background, each = Background.of(runs), rollouts(runs)
    rolled = [(r, c) for r, c in zip(runs, each, strict=True) if c is not None]
    lost = [sum(c.failures.values()) for _, c in rolled]
    pct = [100.0 * x / r.window_sent if r.window_sent else 0.0 for x, (r, _) in zip(lost, rolled, strict=True)]
    kinds = sorted({k for _, c in rolled for k in c.failures})
    real: Counter[str] = Counter()
    for r in measured:
        if r.status is not Status.USED:
            real.update({k: n for k, n in r.lost_by_kind.items() if k not in TIMER_KINDS})
    cl = claim([c.lost for _, c in rolled], len(runs))
    lost_ci = mean_ci(lost)
    notes = [_note(r, c) for r, c in zip(runs, each, strict=True) if r.status is not Status.USED]
    if lost_ci is not None and lost_ci[0] == lost_ci[1] and cl.verdict is Verdict.LOSSY:
        notes.append(f"every rollout lost {lost[0]}: no spread seen, so no interval on lost/rollout")
    notes += [r.stopped for r in runs if r.stopped]
    return CellVerdict(
        variant=first.variant,
        trigger=first.trigger,
        mode=first.mode,
        key=first.provenance.key(),
        verdict=cl.verdict,
        why=_why(cl, len(used), len(runs), sum(1 for r, _ in rolled if r.status is not Status.USED), background),
        trials=len(runs),
        used=len(used),
        excluded=dict(Counter(r.status.value for r in runs if r.status is not Status.USED)),
        rollouts=cl.rollouts,
        rollouts_lost=cl.rollouts_lost,
        p_lose_upper=cl.p_lose_upper,
        p_lose_ci=cl.p_lose_ci,
        lost_min=min(lost, default=0),
        lost_max=max(lost, default=0),
        lost_per_rollout_mean=float(statistics.mean(lost)) if lost else 0.0,
        lost_per_rollout_ci=lost_ci,
        fail_pct_mean=statistics.mean(pct) if pct else 0.0,
        fail_pct_max=max(pct, default=0.0),
        fail_pct_ci=mean_ci(pct),
        by_kind={k: statistics.mean(c.failures.get(k, 0) for _, c in rolled) for k in kinds},
        excluded_real=dict(real),
        baseline_failed=sum(r.phases[Phase.BASELINE].failed for r in measured if Phase.BASELINE in r.phases),
        background=background,
        max_gap_ms=max((r.blindness.max_gap_ms for r in measured if r.blindness), default=0.0),
        rollout_s=statistics.mean(r.window.settled_s - r.window.trigger_s for r in measured if r.window) if measured else 0.0,
        notes=tuple(notes),
    )


def fold_cells(runs: list[RunResult]) -> list[CellVerdict]:
    """One verdict per (variant, trigger, mode, provenance key), in first-run order. Runs made with different options
    are never folded together."""
    cells: dict[tuple[str, str, str, str], list[RunResult]] = {}
    for r in runs:
        cells.setdefault((r.variant, r.trigger, r.mode, r.provenance.key()), []).append(r)
    return [fold(rs) for rs in cells.values()]
