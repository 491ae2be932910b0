"""The CI gate: a loss budget per cell, and which cells break it. Pure.

A cell breaks the budget when its worst counted rollout lost more than `max_failures` requests, or lost more than
`max_fail_pct` % of the requests sent in its window (trigger to end of tail), or when it is inconclusive (too few
usable trials to show it stays within any budget). Exit status of run/compare/report: 1 if any cell breaks it.

A plain `load` (no rollout, no cells) breaks it when more than `max_failures` of its scheduled requests, or more
than `max_fail_pct` % of them, did not end ok (RunSummary.not_ok: lost, client errors, skipped, unfinished).

Counted rollouts are those of harness.verdict: used trials, and excluded (noisy, unreliable) trials whose window
holds failures a stall cannot fake, with those failures. So a cell whose excluded trials lost requests never
passes `--max-failures 0`, and under a larger budget their losses count toward the worst rollout. The lost
requests are every counted failure, background errors included (harness.background): a workload with a background
of HTTP errors loses some in every rollout and passes only a budget above them, or a certification (which counts
rollouts that lost beyond the background).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ExitCode, UsageError
from harness.summary import RunSummary
from harness.verdict import CellVerdict, Verdict

EXIT_OVER_BUDGET = ExitCode.OVER_BUDGET


@dataclass(frozen=True)
class Budget:
    max_failures: int | None = None
    """Lost requests allowed in any counted rollout of a cell (0: a lossless claim)."""
    max_fail_pct: float | None = None
    """Lost requests allowed in any counted rollout, in % of the requests sent in its window."""
    certify: float | None = None
    """A certification claim to reach: P(a rollout loses anything) shown at most this (95 %). A lossy cell breaks
    it, and so does a lossless one whose rollouts were too few for the claim."""

    def __post_init__(self) -> None:
        if self.max_failures is not None and self.max_failures < 0:
            raise UsageError(f"--max-failures {self.max_failures}: must be 0 or more")
        if self.max_fail_pct is not None and not 0 <= self.max_fail_pct <= 100:
            raise UsageError(f"--max-fail-pct {self.max_fail_pct:g}: must be in [0, 100]")

    @property
    def active(self) -> bool:
        return self.max_failures is not None or self.max_fail_pct is not None or self.certify is not None

    def describe(self) -> str:
        parts = [f"at most {self.max_failures} lost" if self.max_failures is not None else ""]
        parts += [f"at most {self.max_fail_pct:g} % lost" if self.max_fail_pct is not None else ""]
        per = " and ".join(p for p in parts if p) + " per rollout" if any(parts) else ""
        claim = f"P(a rollout loses) ≤ {100 * self.certify:g} % shown" if self.certify is not None else ""
        return "; ".join(p for p in (per, claim) if p)

    def breach(self, c: CellVerdict) -> str:
        """Why the cell breaks the budget ("" if it does not, or if no budget is set)."""
        if not self.active:
            return ""
        if c.verdict is Verdict.INCONCLUSIVE:
            return f"inconclusive ({c.why}): cannot show it stays within budget"
        if self.certify is not None:
            if c.verdict is Verdict.LOSSY:
                return f"not certified: {c.why}"
            if c.p_lose_upper is None or c.p_lose_upper > self.certify:
                bound = f"≤ {100 * c.p_lose_upper:.0f} %" if c.p_lose_upper is not None else "no bound"
                return f"not certified: {c.why} shows {bound}, not ≤ {100 * self.certify:g} %"
        return self.exceeded(c.lost_max, c.fail_pct_max)

    def exceeded(self, lost: int, pct: float, what: str = "lost") -> str:
        """Why `lost` requests (`pct` % of those sent) break the budget, or ""; `what` names them in the reason."""
        if self.max_failures is not None and lost > self.max_failures:
            return f"{what} {lost} > {self.max_failures}"
        if self.max_fail_pct is not None and pct > self.max_fail_pct:
            return f"{what} {pct:.2f} % > {self.max_fail_pct:g} %"
        return ""

    def exceeded_load(self, s: RunSummary) -> str:
        """Why a plain `load` breaks the budget, or "": its not-ok requests (failed, client errors, skipped,
        unfinished) against max_failures, their % of the scheduled requests against max_fail_pct. A load that
        scheduled nothing showed nothing and breaks any budget. `certify` is about rollouts and does not apply."""
        if self.max_failures is None and self.max_fail_pct is None:
            return ""
        if s.requests == 0:
            return "no request was scheduled: nothing shown"
        why = self.exceeded(s.not_ok, s.not_ok_pct, "not ok")
        parts = f"{s.failed} failed, {s.client_errors} client errors, {s.skipped} skipped, {s.unfinished} unfinished"
        return f"{why} ({parts})" if why else ""
