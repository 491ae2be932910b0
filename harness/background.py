"""A workload's background errors: the failures it gives all the time, rollout or not, told apart from rollout loss.

The assumption: a steady background is per-request Bernoulli. Every request fails with the same small probability b,
independently of every other, before, during and after a rollout alike. Rollout loss is not like that (the requests
of one rollout fail together, see harness.verdict); the independence is assumed of the background only, and it is
what lets the baseline requests of a cell's trials be pooled into one estimate of b.

Only the workload's own error answers can be background: HTTP 5xx and 4xx (BACKGROUND_KINDS). A transport failure
(refused, no route, reset, a timeout) is the network or the generator: before the trigger it marks the trial noisy,
in the window it is always loss.

The figures, one definition each:
- a burst (per run, `burst`): the baseline's HTTP errors crowd into one second more than a steady rate would put
  into any of its seconds (chance below BURST_ALPHA). A burst is not background: it marks the trial noisy.
- the background (per cell, `Background.of`): B HTTP errors in S baseline requests, pooled over the cell's used
  trials (whose baselines hold no other failure, and no burst); rate = B / S; upper = its exact one-sided 95 %
  upper bound (Clopper-Pearson), None when B = 0.
- the allowance (per rollout, `Background.allowed`): the (1 - ROLLOUT_ALPHA) quantile of Binomial(W, upper), W the
  requests sent in the rollout's window: so many HTTP errors a background at its upper bound exceeds in fewer than
  1 rollout in 1,000. 0 when B = 0: a cell whose baselines saw no error allows none, exactly as before backgrounds.
- loss beyond the background (`Background.beyond`): a rollout's failures hold a kind other than BACKGROUND_KINDS,
  or more HTTP errors than its allowance. A rollout with only background loses with probability at most about
  ROLLOUT_ALPHA (exactly so when upper >= b, which the bound gives 95 % of the time).

A background too rare for the baselines to see (B = 0 while b · W is not small) still reads as loss: to see a
background of rate b the baselines of a cell need about 3 / b requests in all (0.05 %: 6,000, e.g. 3 trials of a
10 s baseline at 200/s).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.classify import FailureKind
from harness.model import Phase, Status
from harness.results import RunResult
from harness.stats import binomial_quantile, binomial_sf, binomial_upper, pct_text

BACKGROUND_KINDS = frozenset({FailureKind.HTTP_5XX.value, FailureKind.HTTP_OTHER.value})
"""Failures a steady background can be made of: the workload's own error answers."""
BURST_ALPHA = 0.01
"""A baseline's HTTP errors are a burst when a steady rate crowds so many into one second with less chance than this."""
ROLLOUT_ALPHA = 0.001
"""A rollout with only background counts as losing with at most about this chance (1 in 1,000): small enough that
the 59 rollouts a 5 % certification takes are rarely failed by the background alone."""


def burst(times: Sequence[float], duration: float) -> int:
    """The HTTP errors of a baseline of `duration` s (their start times) in its busiest second, if a steady rate puts
    that many into some one of its seconds with a chance below BURST_ALPHA (bounded by seconds × P(Binomial(B,
    1/seconds) >= m)); 0 if the errors are compatible with a steady rate. The seconds are equal parts of the
    baseline, about 1 s each; at a steady request rate each error of a steady background falls in any one alike."""
    seconds = max(1, round(duration))
    if len(times) < 2 or seconds == 1:
        return 0
    counts = [0] * seconds
    for t in times:
        counts[min(seconds - 1, max(0, math.floor(t / duration * seconds)))] += 1
    m = max(counts)
    return m if seconds * binomial_sf(m, len(times), 1 / seconds) < BURST_ALPHA else 0


def background_failures(by_kind: Mapping[str, int]) -> int:
    return sum(n for k, n in by_kind.items() if k in BACKGROUND_KINDS)


@dataclass(frozen=True)
class Background:
    """The HTTP error rate a cell's workload shows with no rollout going on, from its used trials' baselines."""

    failures: int
    """B: HTTP errors (5xx, 4xx) in the baselines of the cell's used trials."""
    requests: int
    """S: requests sent in those baselines."""
    rate: float
    """B / S (0-1; 0 without baseline requests)."""
    upper: float | None
    """One-sided 95 % exact upper bound on the background rate (0-1); None when B = 0: no background seen, none
    allowed."""

    @classmethod
    def of(cls, runs: Iterable[RunResult]) -> Background:
        """The background of a cell from its trials: the baselines of the used ones, pooled."""
        base = [r.phases[Phase.BASELINE] for r in runs if r.status is Status.USED and Phase.BASELINE in r.phases]
        b, s = sum(background_failures(p.by_kind) for p in base), sum(p.sent for p in base)
        return cls(b, s, b / s if s else 0.0, binomial_upper(b, s) if b else None)

    def allowed(self, sent: int) -> int:
        """The most HTTP errors a window of `sent` requests may hold and lose nothing beyond the background."""
        return binomial_quantile(sent, self.upper, 1 - ROLLOUT_ALPHA) if self.upper is not None else 0

    def beyond(self, failures: Mapping[str, int], sent: int) -> bool:
        """Whether a rollout with these window failures (by kind) out of `sent` requests lost beyond the background."""
        other = sum(n for k, n in failures.items() if k not in BACKGROUND_KINDS)
        return other > 0 or background_failures(failures) > self.allowed(sent)

    def text(self) -> str:
        """ "0.05 % (≤ 0.088 %)": the rate, and its upper bound rounded up, in % of requests; "" without one."""
        if self.upper is None:
            return ""
        return f"{100 * self.rate:.2g} % (≤ {pct_text(self.upper, up=True)} %)"
