"""Fold the trials of one cell (variant × trigger × mode × options) into a verdict with its uncertainty.

- Only `used` trials enter the statistics; failed, noisy and unreliable ones are counted ("2/3 used") and their
  refused/reset/no_route/5xx counts are still shown (a stalled generator cannot fake those).
- lossless: 0 lost in every used trial, with at least min(2, trials) used. Printed with the one-sided 95 % upper
  bound on the per-request loss rate over all used requests (exact binomial, 0 of N: 1 - 0.05**(1/N), about
  3/N, "the rule of three").
- lossy: some used trial lost requests. Printed with the mean fail % and its two-sided 95 % interval over the
  used trials (Student's t, n-1 degrees of freedom: trials vary far more than binomial noise, since loss comes
  in bursts), and the min-max count.
- inconclusive: too few used trials to claim zero.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from harness.classify import TIMER_KINDS
from harness.model import Phase, Status
from harness.results import RunResult

# two-sided 95 % Student t quantiles by degrees of freedom (1..10); 1.96 beyond
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


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
    """Status -> trials left out of the statistics."""
    lost_min: int
    lost_max: int
    lost_mean: float
    fail_pct_mean: float
    fail_pct_max: float
    """Worst used trial's lost requests in % of the requests sent in its window."""
    fail_pct_ci: tuple[float, float] | None
    """95 % interval of the mean fail % (None with fewer than 2 used trials)."""
    upper_bound_pct: float | None
    """lossless only: 95 % upper bound on the per-request loss rate, in %."""
    by_kind: dict[str, float]
    """Mean lost requests per kind over used trials."""
    excluded_real: dict[str, int]
    """Refused/no_route/reset/HTTP failures (summed) in the disruption+tail of excluded, non-failed trials."""
    baseline_failed: int
    """Failures in the baseline phase, summed over all trials (why trials were noisy)."""
    max_gap_ms: float
    rollout_s: float
    """Mean trigger-to-settled time over the trials that ran."""
    notes: tuple[str, ...]


def upper_bound_zero(n: int, alpha: float = 0.05) -> float:
    """One-sided (1 - alpha) upper bound on a rate after 0 events in n trials (exact binomial)."""
    return 1.0 - alpha ** (1.0 / n) if n > 0 else 1.0


def mean_ci(values: list[float]) -> tuple[float, float] | None:
    if len(values) < 2:
        return None
    m, sd = statistics.mean(values), statistics.stdev(values)
    half = _T95.get(len(values) - 1, 1.96) * sd / len(values) ** 0.5
    return (max(0.0, m - half), m + half)


def fold(runs: list[RunResult]) -> CellVerdict:
    first = runs[0]
    used = [r for r in runs if r.status is Status.USED]
    excluded = Counter(r.status.value for r in runs if r.status is not Status.USED)
    measured = [r for r in runs if r.status is not Status.FAILED]
    lost = [r.lost for r in used]
    pct = [r.fail_pct for r in used]
    kinds = sorted({k for r in used for k in r.lost_by_kind})
    real: Counter[str] = Counter()
    for r in measured:
        if r.status is not Status.USED:
            real.update({k: n for k, n in r.lost_by_kind.items() if k not in TIMER_KINDS})
    notes = [f"{r.status.value} t{r.trial}: {'; '.join(r.reasons) or r.error}" for r in runs if r.status is not Status.USED]
    notes += [r.stopped for r in runs if r.stopped]
    need = min(2, len(runs))
    if any(lost):
        verdict, why = Verdict.LOSSY, f"{sum(1 for x in lost if x)}/{len(used)} used trials lost requests"
    elif len(used) >= need:
        verdict, why = Verdict.LOSSLESS, f"0 lost in {len(used)}/{len(runs)} trials"
    else:
        verdict, why = Verdict.INCONCLUSIVE, f"{len(used)}/{len(runs)} trials usable; need {need}"
    window_sent = sum(r.window_sent for r in used)
    return CellVerdict(
        variant=first.variant,
        trigger=first.trigger,
        mode=first.mode,
        key=first.provenance.key(),
        verdict=verdict,
        why=why,
        trials=len(runs),
        used=len(used),
        excluded=dict(excluded),
        lost_min=min(lost, default=0),
        lost_max=max(lost, default=0),
        lost_mean=statistics.mean(lost) if lost else 0.0,
        fail_pct_mean=statistics.mean(pct) if pct else 0.0,
        fail_pct_max=max(pct, default=0.0),
        fail_pct_ci=mean_ci(pct),
        upper_bound_pct=100 * upper_bound_zero(window_sent) if verdict is Verdict.LOSSLESS else None,
        by_kind={k: statistics.mean(r.lost_by_kind.get(k, 0) for r in used) for k in kinds},
        excluded_real=dict(real),
        baseline_failed=sum(r.phases[Phase.BASELINE].failed for r in measured if Phase.BASELINE in r.phases),
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
