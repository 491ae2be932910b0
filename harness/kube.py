"""The only module that calls the (synchronous) official Kubernetes client. Callers use asyncio.to_thread.

Client model objects never leave this module: callers get small frozen views (PodView, SliceView, Revision,
DeploymentStatus, NamespaceView). Every ApiException is wrapped here into RolloutError/ClusterError naming the
action and the object, with the API's own message when it sends one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from harness.errors import ClusterError, RolloutError

T = TypeVar("T")
LABEL = "rollout-harness.io/managed"
OWNER = "rollout-harness.io/owner"  # annotation "host pid": which process created the namespace
Obj = dict[str, Any]


def _reason(e: ApiException) -> str:
    """`422 Unprocessable Entity: <the API's message>` when the body carries one."""
    msg = ""
    with contextlib.suppress(ValueError, AttributeError):
        msg = str(json.loads(e.body or "{}").get("message", ""))
    return f"{e.status} {e.reason}" + (f": {msg}" if msg else "")


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as e:
        raise RolloutError(f"failed to {what}: {_reason(e)}") from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise ClusterError(f"failed to {what}: the API server is unreachable ({type(e).__name__})") from e


STATEFULSET = "StatefulSet"


@dataclass(frozen=True)
class DeploymentStatus:
    generation: int
    observed: int
    replicas: int
    updated: int
    ready: int
    available: int
    stalled: str  # non-empty when Progressing=False (e.g. ProgressDeadlineExceeded)

    @property
    def complete(self) -> bool:
        """The controller's view (as `kubectl rollout status`): every replica updated and available. Old pods may
        still be terminating; the harness waits for them separately (see actions.wait_settled)."""
        return self.observed >= self.generation and self.updated == self.replicas and self.available == self.replicas

    def describe(self) -> str:
        return f"updated {self.updated}/{self.replicas}, available {self.available}/{self.replicas}"


@dataclass(frozen=True)
class PodView:
    name: str
    node: str
    deleting: bool  # has a deletionTimestamp (terminating)
    ready: bool  # condition Ready=True
    phase: str
    reason: str = ""  # why a container is not running, e.g. "ErrImageNeverPull: ..." (empty when it runs)

    @property
    def state(self) -> str:
        """One word for the timeline: terminating, ready, running, scheduled or pending."""
        if self.deleting:
            return "terminating"
        if self.ready:
            return "ready"
        if self.node:
            return "running" if self.phase == "Running" else "scheduled"
        return "pending"


@dataclass(frozen=True)
class EndpointView:
    pod: str
    ready: bool
    serving: bool
    terminating: bool

    @property
    def state(self) -> str:
        if self.ready:
            return "ready"
        return "serving-terminating" if self.serving else "not-ready"


@dataclass(frozen=True)
class SliceView:
    name: str
    endpoints: tuple[EndpointView, ...]


@dataclass(frozen=True)
class Revision:
    number: int
    template: Obj  # the ReplicaSet's pod template as plain JSON, pod-template-hash label removed


@dataclass(frozen=True)
class NamespaceView:
    name: str
    owner: str  # "host pid" of the harness process that created it ("" if unknown)
    terminating: bool


def _pod_view(p: Any) -> PodView:
    conds = {c.type: c.status for c in (p.status.conditions or [])}
    reason = ""
    for cs in p.status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason not in (None, "ContainerCreating"):
            reason = f"{waiting.reason}: {waiting.message or ''}".strip().rstrip(":")
    return PodView(
        name=p.metadata.name,
        node=p.spec.node_name or "",
        deleting=p.metadata.deletion_timestamp is not None,
        ready=conds.get("Ready") == "True",
        phase=p.status.phase or "",
        reason=reason,
    )


def _slice_view(s: Any) -> SliceView:
    eps = []
    for ep in s.endpoints or []:
        ref = ep.target_ref
        if ref is None or ref.kind != "Pod":
            continue
        c = ep.conditions
        eps.append(EndpointView(ref.name, bool(c and c.ready), bool(c and c.serving), bool(c and c.terminating)))
    return SliceView(s.metadata.name, tuple(eps))


def proxy_mode_of(conf: str) -> str:
    """The mode in kube-proxy's config.conf (KubeProxyConfiguration YAML); empty or absent means iptables."""
    m = re.search(r"^mode:\s*\"?([a-z]*)", conf, re.MULTILINE)
    return (m.group(1) if m else "") or "iptables"


def context_name(kubeconfig: Path | None, context: str | None) -> str:
    """The context a client built from (kubeconfig, context) uses: `context`, else the file's current one
    (kubeconfig None: $KUBECONFIG, else ~/.kube/config, as kubectl resolves it)."""
    if context:
        return context
    try:
        _, active = config.list_kube_config_contexts(config_file=str(kubeconfig) if kubeconfig else None)
    except Exception as e:  # config errors come in many types
        raise ClusterError(f"cannot load kubeconfig {kubeconfig or '(default)'}: {e}") from None
    return str(active["name"])


class Kube:
    def __init__(self, kubeconfig: Path | None, context: str | None = None) -> None:
        """kubeconfig None: $KUBECONFIG, else ~/.kube/config; context None: the file's current context."""
        try:
            self._api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
        except Exception as e:  # config errors come in many types
            where = f"{kubeconfig or '(default)'}" + (f", context {context!r}" if context else "")
            raise ClusterError(f"cannot load kubeconfig {where}: {e}") from None
        self.core = client.CoreV1Api(self._api)
        self.apps = client.AppsV1Api(self._api)
        self.policy = client.PolicyV1Api(self._api)
        self.discovery = client.DiscoveryV1Api(self._api)

    def close(self) -> None:
        self._api.close()

    def ping(self) -> str:
        info = _call("reach the API server", lambda: client.VersionApi(self._api).get_code(_request_timeout=5))
        return str(info.git_version)

    # namespaces -------------------------------------------------------------------------------------
    def create_namespace(self, name: str, labels: dict[str, str], owner: str) -> None:
        body = {"metadata": {"name": name, "labels": {LABEL: "true", **labels}, "annotations": {OWNER: owner}}}
        _call(f"create namespace {name!r}", lambda: self.core.create_namespace(body))

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, _request_timeout=30)
        except ApiException as e:
            if e.status != 404:
                raise RolloutError(f"failed to delete namespace {name!r}: {_reason(e)}") from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterError(f"failed to delete namespace {name!r}: the API server is unreachable ({type(e).__name__})") from e

    def kill_pods(self, ns: str) -> None:
        """Delete every pod of `ns` with no grace period (its preStop hooks and drains cut short). For a namespace
        that is being deleted after its window: otherwise its pods would take their full graceful termination and
        exit (and leave the endpoints, and be torn down by the kubelet and the CNI) while the next cell is measured."""
        _call(
            f"delete the pods of namespace {ns!r}",
            lambda: self.core.delete_collection_namespaced_pod(ns, grace_period_seconds=0, _request_timeout=30),
        )

    def managed_namespaces(self, selector: str = "") -> list[NamespaceView]:
        sel = f"{LABEL}=true" + (f",{selector}" if selector else "")
        res = _call("list namespaces", lambda: self.core.list_namespace(label_selector=sel))
        return [
            NamespaceView(n.metadata.name, (n.metadata.annotations or {}).get(OWNER, ""), n.status.phase == "Terminating")
            for n in res.items
        ]

    def used_nodeports(self) -> set[int]:
        res = _call("list services", lambda: self.core.list_service_for_all_namespaces())
        return {p.node_port for s in res.items for p in (s.spec.ports or []) if p.node_port}

    # objects ----------------------------------------------------------------------------------------
    def create(self, ns: str, obj: Obj) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        creators: dict[str, Callable[[], Any]] = {
            "Deployment": lambda: self.apps.create_namespaced_deployment(ns, obj),
            STATEFULSET: lambda: self.apps.create_namespaced_stateful_set(ns, obj),
            "Service": lambda: self.core.create_namespaced_service(ns, obj),
            "PodDisruptionBudget": lambda: self.policy.create_namespaced_pod_disruption_budget(ns, obj),
            "ConfigMap": lambda: self.core.create_namespaced_config_map(ns, obj),
            "Pod": lambda: self.core.create_namespaced_pod(ns, obj),
        }
        if kind not in creators:
            raise RolloutError(f"cannot create {kind} {name!r}: kind not supported ({', '.join(creators)})")
        _call(f"create {kind.lower()} {name!r} in {ns}", creators[kind])

    def proxy_mode(self) -> str:
        """kube-proxy's mode from the kube-system/kube-proxy ConfigMap (kubeadm, kind), `unknown` if unreadable."""
        try:
            cm = self.core.read_namespaced_config_map("kube-proxy", "kube-system", _request_timeout=10)
        except (ApiException, urllib3.exceptions.HTTPError):
            return "unknown"
        return proxy_mode_of((cm.data or {}).get("config.conf", ""))

    def service_address(self, ns: str, name: str) -> tuple[str, int]:
        """The Service's ClusterIP and first port."""
        svc = _call(f"read service {name!r}", lambda: self.core.read_namespaced_service(name, ns))
        return str(svc.spec.cluster_ip), int(svc.spec.ports[0].port)

    def rollout_status(self, ns: str, kind: str, name: str) -> DeploymentStatus:
        """A Deployment's or a StatefulSet's rollout status (a StatefulSet has no Progressing condition, so it never
        reports a stalled rollout)."""
        read = self.apps.read_namespaced_stateful_set_status if kind == STATEFULSET else self.apps.read_namespaced_deployment_status
        obj = _call(f"read {kind.lower()} {name!r}", lambda: read(name, ns))
        st = obj.status
        stalled = ""
        for c in st.conditions or []:
            if c.type == "Progressing" and c.status == "False":
                stalled = f"{c.reason}: {c.message}"
        return DeploymentStatus(
            obj.metadata.generation or 0,
            st.observed_generation or 0,
            obj.spec.replicas or 0,
            st.updated_replicas or 0,
            st.ready_replicas or 0,
            st.available_replicas or 0,
            stalled,
        )

    def patch_workload(self, ns: str, kind: str, name: str, patch: Obj | list[Obj], what: str) -> None:
        ctype = "application/json-patch+json" if isinstance(patch, list) else "application/strategic-merge-patch+json"
        call = self.apps.patch_namespaced_stateful_set if kind == STATEFULSET else self.apps.patch_namespaced_deployment
        _call(f"{what} ({kind.lower()} {name!r})", lambda: call(name, ns, patch, _content_type=ctype))

    def revisions(self, ns: str, kind: str, selector: str) -> list[Revision]:
        """The workload's revisions, oldest first (what `kubectl rollout undo` reads): a Deployment's ReplicaSets, a
        StatefulSet's ControllerRevisions."""
        out = []
        if kind == STATEFULSET:
            crs = _call("list controllerrevisions", lambda: self.apps.list_namespaced_controller_revision(ns, label_selector=selector))
            for cr in crs.items:
                template = dict(cr.data["spec"]["template"])
                template.pop("$patch", None)
                out.append(Revision(int(cr.revision), template))
        else:
            rss = _call("list replicasets", lambda: self.apps.list_namespaced_replica_set(ns, label_selector=selector))
            for rs in rss.items:
                number = int((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))
                template = json.loads(json.dumps(self._api.sanitize_for_serialization(rs.spec.template)))
                template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
                out.append(Revision(number, template))
        return sorted(out, key=lambda r: r.number)

    def list_pods(self, ns: str, selector: str) -> list[PodView]:
        return [_pod_view(p) for p in _call("list pods", lambda: self.core.list_namespaced_pod(ns, label_selector=selector)).items]

    def delete_pod(self, ns: str, name: str, grace: int | None = None) -> None:
        try:
            self.core.delete_namespaced_pod(name, ns, grace_period_seconds=grace)
        except ApiException as e:
            if e.status != 404:
                raise RolloutError(f"failed to delete pod {name!r}: {_reason(e)}") from e

    def endpoint_slices(self, ns: str, service: str) -> list[SliceView]:
        sel = f"kubernetes.io/service-name={service}"
        res = _call(f"list endpointslices of {service!r}", lambda: self.discovery.list_namespaced_endpoint_slice(ns, label_selector=sel))
        return [_slice_view(s) for s in res.items]

    # nodes and eviction ----------------------------------------------------------------------------
    def node_ready(self, node: str) -> bool:
        n = _call(f"read node {node!r}", lambda: self.core.read_node_status(node))
        return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])

    def set_unschedulable(self, node: str, value: bool) -> None:
        verb = "cordon" if value else "uncordon"
        _call(
            f"{verb} node {node!r}",
            lambda: self.core.patch_node(
                node, {"spec": {"unschedulable": value or None}}, _content_type="application/strategic-merge-patch+json"
            ),
        )

    def evict(self, ns: str, pod: str) -> bool:
        """True when evicted; False when a PodDisruptionBudget refuses it now (429)."""
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns))
        try:
            _call(f"evict pod {pod!r}", lambda: self.core.create_namespaced_pod_eviction(pod, ns, body))
            return True
        except RolloutError as e:
            status = getattr(e.__cause__, "status", None)
            if status == 429:
                return False
            if status == 404:
                return True
            raise

    # watches ------------------------------------------------------------------------------------------
    def stream_pods(self, ns: str, stop: Callable[[], bool], selector: str = "") -> Iterator[tuple[float, str, PodView]]:
        """(monotonic time, ADDED|MODIFIED|DELETED, pod) for every change to the pods in ns matching the label
        selector (all when empty) until stop() is true."""
        for t, typ, name, obj in self._stream("pod", ns, stop, self.core.list_namespaced_pod, selector):
            yield t, typ, _pod_view(obj) if obj is not None else PodView(name, "", True, False, "")

    def stream_slices(self, ns: str, stop: Callable[[], bool], service: str = "") -> Iterator[tuple[float, str, SliceView]]:
        """service: only that Service's slices (a StatefulSet's headless Service has its own)."""
        selector = f"kubernetes.io/service-name={service}" if service else ""
        lister = self.discovery.list_namespaced_endpoint_slice
        for t, typ, name, obj in self._stream("endpointslice", ns, stop, lister, selector):
            yield t, typ, _slice_view(obj) if obj is not None else SliceView(name, ())

    def _stream(
        self, kind: str, ns: str, stop: Callable[[], bool], lister: Any, selector: str = ""
    ) -> Iterator[tuple[float, str, str, Any]]:
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
                    present = {o.metadata.name for o in _call(f"list {kind}s", lambda: lister(ns, label_selector=selector)).items}
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
                raise RolloutError(f"failed to watch {kind}s in {ns}: {_reason(e)}") from e
            except (urllib3.exceptions.HTTPError, OSError):
                if stop():
                    return
                time.sleep(0.2)


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
