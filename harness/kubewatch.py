"""Watch streams of a namespace's Pods and EndpointSlices (the client's watch half of harness.kube), resumed
across the API server's timeouts and its expired histories, as (monotonic time, event type, frozen view)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from harness.kube import UNREACHABLE, Kube, api_error, call
from harness.kubeviews import PodView, SliceView, pod_view, slice_view


def stream_pods(kube: Kube, ns: str, stop: Callable[[], bool], selector: str = "") -> Iterator[tuple[float, str, PodView]]:
    """(monotonic time, ADDED|MODIFIED|DELETED, pod) for every change to the pods in ns matching the label
    selector (all when empty) until stop() is true."""
    for t, typ, name, obj in _stream("pod", ns, stop, kube.core.list_namespaced_pod, selector):
        yield t, typ, pod_view(obj) if obj is not None else PodView(name, "", True, False, "")


def stream_slices(kube: Kube, ns: str, stop: Callable[[], bool], service: str = "") -> Iterator[tuple[float, str, SliceView]]:
    """service: only that Service's slices (a StatefulSet's headless Service has its own)."""
    selector = f"kubernetes.io/service-name={service}" if service else ""
    for t, typ, name, obj in _stream("endpointslice", ns, stop, kube.discovery.list_namespaced_endpoint_slice, selector):
        yield t, typ, slice_view(obj) if obj is not None else SliceView(name, ())


def _stream(kind: str, ns: str, stop: Callable[[], bool], lister: Any, selector: str = "") -> Iterator[tuple[float, str, str, Any]]:
    """Watch with resume: (monotonic time, type, name, object). After a 410 (history expired) the watch restarts
    from a fresh list; objects seen before but absent from it were deleted meanwhile: ("DELETED", name, None)."""
    rv: str | None = None
    seen: set[str] = set()
    while not stop():
        w = watch.Watch()
        kw: dict[str, Any] = {"timeout_seconds": 2, "_request_timeout": 5, "label_selector": selector}
        if rv:
            kw["resource_version"] = rv
        try:
            if rv is None and seen:
                present = {o.metadata.name for o in call(f"list {kind}s", lambda: lister(ns, label_selector=selector)).items}
                for name in sorted(seen - present):
                    seen.discard(name)
                    yield time.monotonic(), "DELETED", name, None
            for ev in w.stream(lister, ns, **kw):
                name = ev["object"].metadata.name
                if ev["type"] == "DELETED":
                    seen.discard(name)
                else:
                    seen.add(name)
                yield time.monotonic(), ev["type"], name, ev["object"]
                if stop():
                    w.stop()
                    return
            rv = w.resource_version
        except ApiException as e:
            if e.status == 410:
                rv = None
                continue
            raise api_error(f"watch {kind}s in {ns}", e) from e
        except UNREACHABLE:
            if stop():
                return
            time.sleep(0.2)
