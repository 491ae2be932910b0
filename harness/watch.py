"""Watch Pods and EndpointSlices during a run and turn their changes into timestamped lifecycle events.

Collection only; harness.attribution analyses the events. Times are time.monotonic(), the clock the load
generator's records use too (CLOCK_MONOTONIC is shared by every process on the host).
"""

from __future__ import annotations

import threading

from harness.kube import Kube
from harness.kubewatch import stream_pods, stream_slices
from harness.model import EndpointState, Event, PodState, Source


class Watcher:
    """Collects events from two blocking watch loops (run each in a thread via asyncio.to_thread)."""

    def __init__(self, kube: Kube, namespace: str, selector: str = "", service: str = "") -> None:
        """selector: the workload's pod label selector, so pods of the harness itself (the client pod) stay out;
        service: the Service the load goes to, whose EndpointSlices are followed (all in the namespace if empty)."""
        self.kube = kube
        self.namespace = namespace
        self.selector = selector
        self.service = service
        self.events: list[Event] = []
        self._stop = threading.Event()
        self._pods: dict[str, PodState] = {}
        self._slices: dict[str, dict[str, EndpointState]] = {}
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._stop.set()

    def mark(self, t: float, kind: str, detail: str) -> None:
        self._emit(Event(t, Source.HARNESS, kind, detail))

    def _emit(self, e: Event) -> None:
        with self._lock:
            self.events.append(e)

    def run_pods(self) -> None:
        for t, typ, pod in stream_pods(self.kube, self.namespace, self._stop.is_set, self.selector):
            state = PodState.DELETED if typ == "DELETED" else pod.state
            if self._pods.get(pod.name) != state:
                self._pods[pod.name] = state
                self._emit(Event(t, Source.POD, pod.name, state))

    def run_endpoints(self) -> None:
        for t, typ, sl in stream_slices(self.kube, self.namespace, self._stop.is_set, self.service):
            new: dict[str, EndpointState] = {} if typ == "DELETED" else {e.pod: e.state for e in sl.endpoints}
            old = self._slices.get(sl.name, {})
            self._slices[sl.name] = new
            for pod in sorted(set(old) | set(new)):
                if old.get(pod) != new.get(pod):
                    self._emit(Event(t, Source.ENDPOINT, pod, new.get(pod, EndpointState.REMOVED)))
