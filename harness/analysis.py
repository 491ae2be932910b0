"""From one run's request records, window times and watch events to a RunResult: phases, blindness, status.

Pure: no cluster, no clock, so the accounting is tested with synthetic records (tests/test_analysis.py).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace

from harness.attribution import attribute
from harness.background import BACKGROUND_KINDS, burst
from harness.classify import LOST, FailureKind
from harness.model import Event, Phase, Status, Thresholds
from harness.records import SKIPPED, RequestRecord
from harness.results import Blindness, GeneratorStats, PhaseStats, RunResult, Window
from harness.summary import Accumulator, Histogram

MAX_FAILURE_SAMPLES = 200


class _Phase:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.kinds: Counter[str] = Counter()
        self.pods: Counter[str] = Counter()

    def add(self, rec: RequestRecord) -> None:
        self.kinds[rec.kind] += 1
        if rec.kind == FailureKind.OK.value and rec.pod:
            self.pods[rec.pod] += 1

    def stats(self) -> PhaseStats:
        k = self.kinds
        failed = {kind: n for kind, n in sorted(k.items()) if kind in LOST}
        client = k[FailureKind.CLIENT_ERROR.value]
        return PhaseStats(
            start_s=round(self.start, 3),
            end_s=round(self.end, 3),
            sent=k[FailureKind.OK.value] + sum(failed.values()) + client,
            ok=k[FailureKind.OK.value],
            failed=sum(failed.values()),
            by_kind=failed,
            skipped=k[SKIPPED],
            client_errors=client,
            ok_by_pod=dict(sorted(self.pods.items())),
        )


def _blindness(starts: list[float], lateness: Histogram, window: Window, interval: float) -> Blindness:
    points = [window.trigger_s, *sorted(starts), window.end_s]
    gaps = [b - a for a, b in itertools.pairwise(points)]
    return Blindness(
        max_gap_ms=round(1000 * max(gaps, default=0.0), 1),
        blind_ms=round(1000 * sum(g - interval for g in gaps if g > 2 * interval), 1),
        lateness_p99_ms=round(1000 * lateness.percentile(99), 1),
    )


def analyse(
    base: RunResult,
    records: Iterable[RequestRecord],
    window: Window,
    events: list[Event],
    rate: float,
    thresholds: Thresholds,
    generator: GeneratorStats,
) -> RunResult:
    """Fill `base` (name, cell, provenance, setup time) with everything measured. Event times must already be
    relative to the load's t0, like the records'."""
    bounds = [window.trigger_s, window.settled_s]
    phases = [_Phase(window.start_s, window.trigger_s), _Phase(window.trigger_s, window.settled_s), _Phase(window.settled_s, window.end_s)]
    whole = Accumulator()
    starts: list[float] = []
    lateness = Histogram()
    failures: list[RequestRecord] = []
    last_served: dict[str, float] = {}
    n = 0
    for rec in records:
        n += 1
        if not window.start_s <= rec.start < window.end_s:  # the window is what is counted: load after its end (or
            continue  # before its start, in a series) counts for nothing
        whole.add(rec)
        phases[bisect.bisect_right(bounds, rec.start)].add(rec)
        if window.trigger_s <= rec.start and rec.kind != SKIPPED:
            starts.append(rec.start)
            lateness.add(max(rec.lateness, 0.0))
        if rec.failed:
            failures.append(rec)
        elif rec.pod:
            last_served[rec.pod] = max(last_served.get(rec.pod, 0.0), rec.end)
    stats = dict(zip(Phase, (p.stats() for p in phases), strict=True))
    blind = _blindness(starts, lateness, window, 1.0 / rate)
    failures.sort(key=lambda r: r.start)
    result = replace(
        base,
        window=window,
        phases=stats,
        blindness=blind,
        summary=whole.summary(),
        generator=replace(generator, records=n),
        attribution=attribute(events, [(r.start, r.pod) for r in failures], last_served),
        events=tuple(e for e in events if window.start_s <= e.t <= window.end_s),
        failure_samples=tuple(failures[:MAX_FAILURE_SAMPLES]),
    )
    noisy = _noisy(stats[Phase.BASELINE], [r.start for r in failures if r.start < window.trigger_s and r.kind in BACKGROUND_KINDS])
    reasons = _unreliable(result, blind, thresholds, n)
    if reasons:
        return replace(result, status=Status.UNRELIABLE, reasons=reasons + noisy)
    if noisy:
        return replace(result, status=Status.NOISY, reasons=noisy)
    return replace(result, status=Status.USED, reasons=())


def _noisy(b: PhaseStats, http_errors: list[float]) -> tuple[str, ...]:
    """Why the baseline makes the run noisy: a failure a steady background does not explain (a kind other than an
    HTTP error, or HTTP errors in a burst; see harness.background). HTTP errors at a steady rate are background."""
    if not b.failed:
        return ()
    failed = f"{b.failed} failed in the baseline ({', '.join(f'{k} {v}' for k, v in b.by_kind.items())})"
    if any(k not in BACKGROUND_KINDS for k in b.by_kind):
        return (failed,)
    crowd = burst(http_errors, b.end_s - b.start_s)
    return (f"{failed}: a burst, {crowd} in one second",) if crowd else ()


def _unreliable(r: RunResult, blind: Blindness, th: Thresholds, records: int) -> tuple[str, ...]:
    out = []
    if blind.lateness_p99_ms > th.max_lateness * 1000:
        out.append(f"start lateness p99 {blind.lateness_p99_ms:.0f} ms in the window > {th.max_lateness * 1000:.0f} ms")
    if r.lost == 0 and blind.max_gap_ms > th.max_gap * 1000:
        out.append(f"blind zero: a {blind.max_gap_ms:.0f} ms gap with no request in the window > {th.max_gap * 1000:.0f} ms")
    skipped = sum(p.skipped for p in r.phases.values())
    if skipped:
        out.append(f"{skipped} requests skipped (in-flight cap)")
    client = sum(p.client_errors for p in r.phases.values())
    if client:
        out.append(f"{client} client errors (the generator ran out of descriptors, ports or memory)")
    if r.generator is not None and records != r.generator.sent:
        out.append(f"{r.generator.sent - records} of {r.generator.sent} request records missing")
    return tuple(out)
