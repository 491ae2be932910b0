"""Do the printed bounds mean what they say? Cells simulated from a known loss process (each rollout loses with
probability p, in a burst of geometric or Poisson size; failed, noisy and unreliable trials mixed in, excluded ones
with real-kind losses or with timeouts only) are folded by the real verdict code, and the printed 95 % statement on
P(a rollout loses) (lossless: the one-sided bound, lossy: the Clopper-Pearson interval) must hold the true p in at
least 95 % of 10,000 cells. The old per-request bound, which pooled the requests of a rollout as independent, is
shown to miss the true per-request loss rate far more often. Seeded: the same cells every run."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace
from functools import cache

import pytest
from test_analysis import BASE, WINDOW

from harness.model import Phase, Status
from harness.results import PhaseStats, RunResult
from harness.stats import clopper_pearson, upper_bound_zero
from harness.verdict import CellVerdict, Verdict, claim, fold

SENT = {"baseline": 300, "disruption": 400, "tail": 200}  # requests per phase of one rollout (600 in the window)
P_GRID = (0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 0.8, 0.95)
N_GRID = (3, 5, 10, 20, 30)
CELLS = 10_000
GEOMETRIC_MEAN, POISSON_MEAN = 20, 5  # mean requests lost by a rollout that loses


@cache
def trial(status: Status, kind: str = "", lost: int = 0) -> RunResult:
    """One trial as the harness records it: `lost` failures of `kind` in the disruption; noisy: one in the baseline."""
    if status is Status.FAILED:
        return replace(BASE, status=status, error="rollout did not complete")

    def phase(name: str, start: float, end: float, failed: dict[str, int]) -> PhaseStats:
        n = sum(failed.values())
        return PhaseStats(start, end, SENT[name], SENT[name] - n, n, failed, 0, 0)

    phases = {
        Phase.BASELINE: phase("baseline", 0.0, WINDOW.trigger_s, {"connect_timeout": 1} if status is Status.NOISY else {}),
        Phase.DISRUPTION: phase("disruption", WINDOW.trigger_s, WINDOW.settled_s, {kind: lost} if lost else {}),
        Phase.TAIL: phase("tail", WINDOW.settled_s, WINDOW.end_s, {}),
    }
    return replace(BASE, status=status, reasons=() if status is Status.USED else ("synthetic",), window=WINDOW, phases=phases)


def burst(rng: random.Random, poisson: bool) -> int:
    """Requests lost by a rollout that loses: 1 + Poisson(POISSON_MEAN - 1), or geometric on 1, 2, ... (mean 20)."""
    if poisson:
        k, t, limit = 0, rng.random(), math.exp(-(POISSON_MEAN - 1))
        while t > limit:
            k, t = k + 1, t * rng.random()
        return 1 + k
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1 - 1 / GEOMETRIC_MEAN))


def simulate(rng: random.Random, p: float, n: int, poisson: bool) -> list[RunResult]:
    """n trials of a cell whose rollouts each lose with probability p. Some rollouts fail (nothing measured); some
    trials are noisy (independent of the rollout) or unreliable (more often when the rollout lost: the outage causes
    skipped requests); a fifth of the losses are timeouts only, and an excluded zero may hold timeouts a stall faked."""
    out = []
    for _ in range(n):
        loses = rng.random() < p
        size = burst(rng, poisson) if loses else 0
        kind = rng.choice(("refused", "reset", "no_route", "http_5xx")) if rng.random() < 0.8 else "connect_timeout"
        u = rng.random()
        if u < 0.03:
            out.append(trial(Status.FAILED))
            continue
        status = Status.NOISY if u < 0.08 else Status.UNRELIABLE if rng.random() < (0.15 if loses else 0.03) else Status.USED
        if not loses and status is not Status.USED and rng.random() < 0.5:
            kind, size = "read_timeout", 1 + int(rng.random() * 40)  # faked by a stalled generator
        out.append(trial(status, kind, size))
    return out


def covers(c: CellVerdict, p: float) -> bool:
    if c.p_lose_upper is not None:
        return p <= c.p_lose_upper
    assert c.p_lose_ci is not None
    return c.p_lose_ci[0] <= p <= c.p_lose_ci[1]


T95_OLD = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def old_claim_covers(runs: list[RunResult], rate_pct: float) -> tuple[str, bool] | None:
    """The verdict code before per-rollout claims (4465c93), on the true per-request loss rate in %: used trials
    only; lossless printed 1 - 0.05^(1/N) over all N used requests, lossy the mean fail % with a t-interval (1.96
    beyond 10 df). (verdict, whether its claim holds the rate), or None when it printed none (inconclusive, or one
    lossy trial)."""
    used = [r for r in runs if r.status is Status.USED]
    if not any(r.lost for r in used):
        if len(used) < min(2, len(runs)):
            return None
        return "lossless", rate_pct <= 100 * upper_bound_zero(sum(r.window_sent for r in used))
    pct = [r.fail_pct for r in used]
    if len(pct) < 2:
        return None
    m, sd = sum(pct) / len(pct), (sum((x - sum(pct) / len(pct)) ** 2 for x in pct) / (len(pct) - 1)) ** 0.5
    half = T95_OLD.get(len(pct) - 1, 1.96) * sd / len(pct) ** 0.5
    return "lossy", max(0.0, m - half) <= rate_pct <= m + half


def test_printed_rollout_bounds_cover_the_true_chance_and_the_old_per_request_bound_does_not() -> None:
    rng = random.Random(20261130)
    hits: Counter[tuple[float, int]] = Counter()
    claims: Counter[tuple[float, int]] = Counter()
    verdicts: Counter[Verdict] = Counter()
    old_claims: Counter[tuple[str, bool]] = Counter()
    for i in range(CELLS):
        p, n = P_GRID[i % len(P_GRID)], N_GRID[(i // len(P_GRID)) % len(N_GRID)]
        poisson = i % 2 == 1
        runs = simulate(rng, p, n, poisson)
        c = fold(runs)
        verdicts[c.verdict] += 1
        if c.verdict is not Verdict.INCONCLUSIVE:
            claims[p, n] += 1
            hits[p, n] += covers(c, p)
        if held := old_claim_covers(runs, 100 * p * (POISSON_MEAN if poisson else GEOMETRIC_MEAN) / 600):
            old_claims[held] += 1
    coverage = sum(hits.values()) / sum(claims.values())  # 0.985 with this seed; the worst point (p 0.3, n 10) 0.956
    assert verdicts[Verdict.LOSSLESS] > 1000 and verdicts[Verdict.LOSSY] > 5000 and verdicts[Verdict.INCONCLUSIVE] < 100
    assert coverage >= 0.95, f"{coverage:.4f} of {sum(claims.values())} claims hold the true p"
    worst = min(hits[k] / claims[k] for k in claims)
    assert worst >= 0.9, {k: round(hits[k] / claims[k], 3) for k in claims}  # 250 cells a point: ± 1.5 % (1 SD)
    old = sum(n for (_, held), n in old_claims.items() if held) / old_claims.total()  # 0.770 with this seed
    old_zero = old_claims["lossless", True] / (old_claims["lossless", True] + old_claims["lossless", False])  # 0.487
    assert old < 0.85 and old_zero < 0.6, f"old claims held the true per-request rate in {old:.3f}, its zero bounds in {old_zero:.3f}"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 20, 30, 60])
def test_exact_coverage_of_the_printed_claim_at_every_p(n: int) -> None:
    """The same without simulation, for used trials only: the chance, summed over k ~ Binomial(n, p), that the claim
    claim() prints for k of n holds p. Each claim alone is exact; printing the one-sided bound at k = 0 and the
    two-sided interval otherwise costs up to ~7 points just above the zero bound (n = 10, p ≈ 0.26: 92.7 %)."""
    printed = [claim([1] * k + [0] * (n - k), n) for k in range(n + 1)]
    assert printed[0].p_lose_upper == upper_bound_zero(n) and printed[-1].p_lose_ci == clopper_pearson(n, n)

    def coverage(p: float) -> float:
        return sum(
            math.comb(n, k) * p**k * (1 - p) ** (n - k)
            for k, c in enumerate(printed)
            if (p <= c.p_lose_upper if c.p_lose_upper is not None else c.p_lose_ci and c.p_lose_ci[0] <= p <= c.p_lose_ci[1])
        )

    at = [coverage(i / 400) for i in range(1, 400)]
    assert min(at) >= 0.925
    assert sum(at) / len(at) >= 0.95
