"""Watch Pods and EndpointSlices during a run; turn their changes into timestamped lifecycle events,
then attribute failed requests to pod states and measure endpoint-removal lag."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.kube import Kube


@dataclass(frozen=True)
class Event:
    t: float  # wall clock (time.time())
    source: str  # "pod" | "endpoint" | "harness"
    name: str  # pod name (or "" for harness marks)
    state: str


def pod_state(event_type: str, pod: Any) -> str:
    if event_type == "DELETED":
        return "deleted"
    if pod.metadata.deletion_timestamp is not None:
        return "terminating"
    conds = {c.type: c.status for c in (pod.status.conditions or [])}
    if conds.get("Ready") == "True":
        return "ready"
    if pod.spec.node_name:
        return "running" if pod.status.phase == "Running" else "scheduled"
    return "pending"


def endpoint_states(slice_obj: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for ep in slice_obj.endpoints or []:
        ref = ep.target_ref
        if ref is None or ref.kind != "Pod":
            continue
        c = ep.conditions
        if c is not None and c.ready:
            out[ref.name] = "ready"
        elif c is not None and c.serving:
            out[ref.name] = "serving-terminating"
        else:
            out[ref.name] = "not-ready"
    return out


class Watcher:
    """Collects events from two blocking watch loops (run each in a thread via asyncio.to_thread)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.events: list[Event] = []
        self._stop = threading.Event()
        self._pods: dict[str, str] = {}
        self._slices: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()

    def mark(self, t: float, kind: str, detail: str) -> None:
        with self._lock:
            self.events.append(Event(t, "harness", kind, detail))

    def _emit(self, t: float, source: str, name: str, state: str) -> None:
        with self._lock:
            self.events.append(Event(t, source, name, state))

    def run_pods(self) -> None:
        for t, typ, pod in self.kube.stream("pod", self.namespace, self._stop.is_set):
            name = pod.metadata.name
            state = pod_state(typ, pod)
            if self._pods.get(name) != state:
                self._pods[name] = state
                self._emit(t, "pod", name, state)

    def run_endpoints(self) -> None:
        for t, typ, sl in self.kube.stream("endpointslice", self.namespace, self._stop.is_set):
            key = sl.metadata.name
            new = {} if typ == "DELETED" else endpoint_states(sl)
            old = self._slices.get(key, {})
            self._slices[key] = new
            for pod in sorted(set(old) | set(new)):
                if old.get(pod) != new.get(pod):
                    self._emit(t, "endpoint", pod, new.get(pod, "removed"))


@dataclass(frozen=True)
class Attribution:
    failures_by_state: dict[str, int]
    endpoint_lag_ms: dict[str, float]  # pod -> last request it served minus when it left ready endpoints
    pod_termination_s: dict[str, float]  # pod -> terminating -> deleted


def attribute(events: Iterable[Event], failures: list[tuple[float, str]], last_served: dict[str, float]) -> Attribution:
    """failures: (wall time, pod header or "") per failed request; last_served: pod -> wall time of its last 2xx."""
    evs = sorted(events, key=lambda e: e.t)
    pod_evs = [e for e in evs if e.source == "pod"]
    times = [e.t for e in pod_evs]
    left_endpoints: dict[str, float] = {}  # pod -> when it went from ready to anything else in the EndpointSlice
    was_ready: set[str] = set()
    for e in evs:
        if e.source != "endpoint":
            continue
        if e.state == "ready":
            was_ready.add(e.name)
        elif e.name in was_ready and e.name not in left_endpoints:
            left_endpoints[e.name] = e.t
    term_start: dict[str, float] = {}
    termination: dict[str, float] = {}
    for e in pod_evs:
        if e.state == "terminating":
            term_start.setdefault(e.name, e.t)
        elif e.state == "deleted" and e.name in term_start:
            termination[e.name] = round(e.t - term_start[e.name], 2)
    by_state: dict[str, int] = {}
    for t, pod in failures:
        i = bisect.bisect_right(times, t)
        states: dict[str, str] = {}
        recent_deleted = recent_ready = False
        for e in pod_evs[:i]:
            states[e.name] = e.state
            recent_deleted |= e.state == "deleted" and t - e.t < 3.0
            recent_ready |= e.state == "ready" and t - e.t < 5.0
        if pod and pod in states:
            key = states[pod]
        elif any(s == "terminating" for s in states.values()) or recent_deleted:
            key = "terminating"
        elif recent_ready:
            key = "new-pod-just-ready"
        elif any(s in ("running", "scheduled", "pending") for s in states.values()):
            key = "starting"
        else:
            key = "all-ready"
        by_state[key] = by_state.get(key, 0) + 1
    lag = {pod: round((last_served[pod] - t_left) * 1000, 1) for pod, t_left in left_endpoints.items() if pod in last_served}
    return Attribution(by_state, dict(sorted(lag.items())), termination)
