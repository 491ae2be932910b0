"""Which pod and endpoint states were present when each failed request started, how long pods kept serving after
they left the endpoints, and how long they took to terminate. Pure functions over watch events and records.

This says what coincided with a failure, not what caused it: during a rolling update several states overlap,
and a failure counts once under every state present at its start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from harness.model import EndpointState, Event, PodState, Source

RECENT_DELETE_S = 2.0
"""A pod deleted less than this long before a failure is listed as `pod deleted <2s`: kube-proxy programs its rules
after the EndpointSlice changes (up to ~1.7 s measured here), so new connections can still go to a dead pod."""


@dataclass(frozen=True)
class Attribution:
    states_at_failure: dict[str, int]
    """State -> failed requests that started while at least one pod/endpoint was in it (`pod ready`, `pod
    terminating`, `pod running` (not ready), `pod deleted <2s`, `endpoint serving-terminating`, ...) and, for
    failures answered by a pod (HTTP errors carry X-Pod), `answered by <state> pod`. One failure counts under
    every state present, so the counts add up to more than the failures."""
    endpoint_lag_ms: dict[str, float]
    """Pod -> ms from leaving the ready endpoints to the last request it served (positive: it kept serving)."""
    pod_termination_s: dict[str, float]
    """Pod -> seconds from terminating to deleted."""

    @property
    def max_endpoint_lag_ms(self) -> float:
        return max(self.endpoint_lag_ms.values(), default=0.0)


def attribute(events: Iterable[Event], failures: list[tuple[float, str]], last_served: dict[str, float]) -> Attribution:
    """failures: (start time, X-Pod header or "") per failed request; last_served: pod -> end of its last success.
    All times on the events' clock."""
    evs = sorted((e for e in events if e.source in (Source.POD, Source.ENDPOINT)), key=lambda e: e.t)
    pods: dict[str, str] = {}
    endpoints: dict[str, str] = {}
    deleted_at: dict[str, float] = {}
    counts: Counter[str] = Counter()
    i = 0
    for t, pod in sorted(failures):
        while i < len(evs) and evs[i].t <= t:
            e = evs[i]
            if e.source is Source.POD:
                if e.state == PodState.DELETED:
                    pods.pop(e.name, None)
                    deleted_at[e.name] = e.t
                else:
                    pods[e.name] = e.state
            elif e.state == EndpointState.REMOVED:
                endpoints.pop(e.name, None)
            else:
                endpoints[e.name] = e.state
            i += 1
        present = {f"pod {s}" for s in pods.values()} | {f"endpoint {s}" for s in endpoints.values()}
        if any(t - d < RECENT_DELETE_S for d in deleted_at.values()):
            present.add(f"pod deleted <{RECENT_DELETE_S:g}s")
        if pod:
            present.add(f"answered by {pods.get(pod, 'unknown')} pod")
        counts.update(present or {"no pods"})
    return Attribution(dict(counts.most_common()), _endpoint_lag(evs, last_served), _termination(evs))


def _endpoint_lag(evs: list[Event], last_served: dict[str, float]) -> dict[str, float]:
    left: dict[str, float] = {}  # pod -> when it went from ready to anything else in the EndpointSlice
    was_ready: set[str] = set()
    for e in evs:
        if e.source is not Source.ENDPOINT:
            continue
        if e.state == EndpointState.READY:
            was_ready.add(e.name)
        elif e.name in was_ready and e.name not in left:
            left[e.name] = e.t
    lag = {pod: round((last_served[pod] - t) * 1000, 1) for pod, t in left.items() if pod in last_served}
    return dict(sorted(lag.items()))


def _termination(evs: list[Event]) -> dict[str, float]:
    start: dict[str, float] = {}
    out: dict[str, float] = {}
    for e in evs:
        if e.source is not Source.POD:
            continue
        if e.state == PodState.TERMINATING:
            start.setdefault(e.name, e.t)
        elif e.state == PodState.DELETED and e.name in start:
            out[e.name] = round(e.t - start[e.name], 2)
    return out
