"""Online aggregation of request records into a RunSummary, in memory bounded by run length."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from harness.classify import FAILURE_KINDS, LOST, FailureKind
from harness.records import SKIPPED, UNFINISHED, RequestRecord

_RES = math.log(1.01)  # 1 % resolution histogram of seconds, from 1 microsecond up
_PENDING, _OK, _FAIL, _SKIP, _NEITHER = 0, 1, 2, 3, 4  # NEITHER: client_error or unfinished


class Histogram:
    """Log-bucketed histogram: percentiles within 1 %, constant memory."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.n = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self.counts[int(math.log(max(seconds, 1e-6) / 1e-6) / _RES)] += 1
        self.n += 1
        self.max = max(self.max, seconds)

    def percentile(self, p: float) -> float:
        if self.n == 0:
            return 0.0
        rank = max(1, math.ceil(self.n * p / 100.0))
        seen = 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return min(1e-6 * math.exp((b + 0.5) * _RES), self.max)
        return self.max


@dataclass(frozen=True)
class Outage:
    start_s: float
    end_s: float
    failures: int

    @property
    def ms(self) -> float:
        return (self.end_s - self.start_s) * 1000.0


@dataclass(frozen=True)
class RunSummary:
    requests: int
    """Scheduled requests (ok + failed + skipped + client errors + unfinished)."""
    ok: int
    failed: int
    """Lost requests: service failure kinds only."""
    skipped: int
    """Not sent: the in-flight cap was reached."""
    by_kind: dict[str, int]
    http_codes: dict[str, int]
    failure_pct: float
    """failed / (ok + failed), in %, over the whole run (all phases; RunResult.fail_pct is the rollout figure): the
    service's failure rate among the requests it answered or failed. Blind to the generator's own trouble: the
    figure to judge a run by is not_ok_pct."""
    longest_outage_ms: float
    """Longest failure streak: scheduled time from the first to the last request of the longest run of
    consecutive failed requests (by sequence; skipped ones do not split it). Not an outage duration: with 4
    backends and one dead, streaks are short by chance."""
    outage_start_s: float | None
    disruption_seconds: int
    """Seconds (1-s bins of scheduled time) holding at least one failed request."""
    latency_p50_ms: float
    """Latency of successful requests, from actual start to end."""
    latency_p99_ms: float
    latency_max_ms: float
    lateness_p50_ms: float
    """Start lateness: actual start minus scheduled start (how far behind the open-loop schedule the generator ran)."""
    lateness_p99_ms: float
    achieved_rate: float
    """Requests sent per second of the span from the first start to the last end."""
    timeline: list[dict[str, int]] = field(default_factory=list)
    client_errors: int = 0
    """The generator itself failed (EMFILE, EADDRNOTAVAIL, ...): not the service's fault, not counted as lost."""
    unfinished: int = 0
    """Still in flight when the load stopped; cancelled after the tail."""

    @property
    def not_ok(self) -> int:
        """Scheduled requests that did not end ok: failed + client_errors + skipped + unfinished (= requests - ok).
        What a budget on a plain `load` counts (gate.Budget.exceeded_load): a request the generator could not send
        or finish shows nothing about the service, so it cannot pass for a success. Derived, so never stale in a
        saved result; not in its JSON (requests and ok are)."""
        return self.requests - self.ok

    @property
    def not_ok_pct(self) -> float:
        """not_ok / requests, in % (0 when nothing was scheduled)."""
        return round(100.0 * self.not_ok / self.requests, 4) if self.requests else 0.0


class Accumulator:
    """Feed RequestRecords in any order; call summary() once at the end."""

    def __init__(self) -> None:
        self._outcome = bytearray()
        self._sched: dict[int, float] = {}
        self.kinds: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.latency = Histogram()
        self.lateness = Histogram()
        self._seconds: dict[int, Counter[str]] = {}
        self._last_end = 0.0
        self._first_start: float | None = None

    def add(self, rec: RequestRecord) -> None:
        if rec.seq >= len(self._outcome):
            self._outcome.extend(b"\0" * (rec.seq + 1 - len(self._outcome) + 1024))
        sec = self._seconds.setdefault(int(rec.sched), Counter())
        if rec.kind == SKIPPED:
            self._outcome[rec.seq] = _SKIP
            sec[SKIPPED] += 1
            return
        self.lateness.add(max(rec.lateness, 0.0))
        self._first_start = rec.start if self._first_start is None else min(self._first_start, rec.start)
        self._last_end = max(self._last_end, rec.end)
        if rec.kind != FailureKind.OK and not rec.failed:
            self._outcome[rec.seq] = _NEITHER
            self.kinds[rec.kind] += 1
            return
        if rec.failed:
            self._outcome[rec.seq] = _FAIL
            self._sched[rec.seq] = rec.sched
            self.kinds[rec.kind] += 1
            if rec.status:
                self.codes[str(rec.status)] += 1
            sec[rec.kind] += 1
        else:
            self._outcome[rec.seq] = _OK
            self.latency.add(rec.latency)
            sec["ok"] += 1

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.kinds.items() if k in LOST)

    def _longest_outage(self) -> Outage | None:
        best: Outage | None = None
        first = last = -1
        count = 0
        for seq, o in enumerate(self._outcome):
            if o == _FAIL:
                if first < 0:
                    first, count = seq, 0
                last, count = seq, count + 1
            elif o == _OK and first >= 0:
                cand = Outage(self._sched[first], self._sched[last], count)
                if best is None or (cand.ms, cand.failures) > (best.ms, best.failures):
                    best = cand
                first = -1
        if first >= 0:
            cand = Outage(self._sched[first], self._sched[last], count)
            if best is None or (cand.ms, cand.failures) > (best.ms, best.failures):
                best = cand
        return best

    def summary(self) -> RunSummary:
        ok = self._outcome.count(_OK)
        failed = self._outcome.count(_FAIL)
        skipped = self._outcome.count(_SKIP)
        neither = self._outcome.count(_NEITHER)
        sent = ok + failed
        outage = self._longest_outage()
        timeline = []
        for s in range(min(self._seconds, default=0), max(self._seconds, default=-1) + 1):
            c = self._seconds.get(s, Counter())
            timeline.append({"t": s, **{k: v for k, v in sorted(c.items())}})
        span = self._last_end - (self._first_start or 0.0)
        return RunSummary(
            requests=sent + skipped + neither,
            ok=ok,
            failed=failed,
            skipped=skipped,
            by_kind={k.value: self.kinds.get(k.value, 0) for k in FAILURE_KINDS if self.kinds.get(k.value)},
            http_codes=dict(sorted(self.codes.items())),
            failure_pct=round(100.0 * failed / sent, 4) if sent else 0.0,
            longest_outage_ms=round(outage.ms, 1) if outage else 0.0,
            outage_start_s=round(outage.start_s, 3) if outage else None,
            disruption_seconds=sum(1 for c in self._seconds.values() if any(k in LOST for k in c)),
            latency_p50_ms=round(self.latency.percentile(50) * 1000, 3),
            latency_p99_ms=round(self.latency.percentile(99) * 1000, 3),
            latency_max_ms=round(self.latency.max * 1000, 3),
            lateness_p50_ms=round(self.lateness.percentile(50) * 1000, 3),
            lateness_p99_ms=round(self.lateness.percentile(99) * 1000, 3),
            achieved_rate=round(sent / span, 1) if span > 0 else 0.0,
            timeline=timeline,
            client_errors=self.kinds.get(FailureKind.CLIENT_ERROR.value, 0),
            unfinished=self.kinds.get(UNFINISHED, 0),
        )
