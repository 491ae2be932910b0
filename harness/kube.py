"""The calls the harness makes to the (synchronous) official Kubernetes client. Callers use asyncio.to_thread.

Client model objects never leave this module and harness.kubewatch (its watch streams): callers get the frozen
views of harness.kubeviews. Every ApiException is wrapped here (`call`) into an ApiError (a RolloutError with
the HTTP status) naming the action and the object, with the API's own message when it sends one; an unreachable
API server into a ClusterError.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.errors import ApiError, ClusterError, RolloutError
from harness.kubeviews import (
    AutoscalerView,
    ConfigMapView,
    DeploymentStatus,
    NamespaceView,
    NodeView,
    Obj,
    PodView,
    Revision,
    SliceView,
    autoscaler_view,
    daemonset_status,
    deployment_status,
    node_view,
    pod_view,
    proxy_mode_of,
    slice_view,
)

T = TypeVar("T")
NodeChange = Callable[[NodeView], Obj | None]
"""What to patch on a node as read (a strategic merge patch), None to leave it as it is."""
CONFLICT_RETRIES = 5
LABEL = "rollout-harness.io/managed"
OWNER = "rollout-harness.io/owner"  # annotation: which harness process created the namespace (harness.owner)
DEPLOYMENT = "Deployment"
STATEFULSET = "StatefulSet"
DAEMONSET = "DaemonSet"
API_TIMEOUT = 30.0
"""s: the longest any API call waits for its answer when it names no timeout of its own (watches name theirs)."""
UNREACHABLE = (urllib3.exceptions.HTTPError, OSError)
"""What the client raises when it gets no answer from the API server."""


def api_error(what: str, e: ApiException) -> ApiError:
    """`failed to <what>: 422 Unprocessable Entity: <the API's message>` (the message when the body carries one)."""
    msg = ""
    with contextlib.suppress(ValueError, AttributeError):
        msg = str(json.loads(e.body or "{}").get("message", ""))
    return ApiError(f"failed to {what}: {e.status} {e.reason}" + (f": {msg}" if msg else ""), int(e.status or 0))


def unanswered(e: BaseException) -> str:
    """Why a call got no answer, from its innermost cause: `Connection refused`, `Name or service not known`,
    `timed out`, a TLS error (urllib3 wraps it in a MaxRetryError that says only that it gave up)."""
    for _ in range(10):
        reason = getattr(e, "reason", None)
        inner = reason if isinstance(reason, BaseException) else e.__cause__ or e.__context__
        if inner is None:
            break
        e = inner
    text = (e.strerror if isinstance(e, OSError) else None) or str(e)
    return text.splitlines()[0] if text.strip() else type(e).__name__


def call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as e:
        raise api_error(what, e) from e
    except UNREACHABLE as e:
        raise ClusterError(f"failed to {what}: the API server is unreachable ({unanswered(e)})") from e


def _delete(what: str, fn: Callable[[], object]) -> None:
    """`call` for a delete: an object already gone (404) is what was asked for."""
    try:
        call(what, fn)
    except ApiError as e:
        if e.status != 404:
            raise


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


class _WorkloadCalls(NamedTuple):
    """The calls that differ between the workload kinds the triggers act on."""

    read_status: Callable[..., Any]
    patch: Callable[..., Any]
    revisions: Callable[[str, str], list[Revision]]
    status: Callable[[Any], DeploymentStatus] = deployment_status


def _bounded(rest: Any, timeout: float) -> None:
    """Give every request of the client's REST layer `timeout` unless the call names its own."""
    request = rest.request

    def bounded(*args: Any, **kw: Any) -> Any:
        if kw.get("_request_timeout") is None:
            kw["_request_timeout"] = timeout
        return request(*args, **kw)

    rest.request = bounded


class Kube:
    def __init__(self, kubeconfig: Path | None, context: str | None = None, timeout: float = API_TIMEOUT) -> None:
        """kubeconfig None: $KUBECONFIG, else ~/.kube/config; context None: the file's current context; timeout: see
        API_TIMEOUT."""
        try:
            self._api = config.new_client_from_config(config_file=str(kubeconfig) if kubeconfig else None, context=context)
        except Exception as e:  # config errors come in many types
            where = f"{kubeconfig or '(default)'}" + (f", context {context!r}" if context else "")
            raise ClusterError(f"cannot load kubeconfig {where}: {e}") from None
        _bounded(self._api.rest_client, timeout)
        self.core = client.CoreV1Api(self._api)
        self.apps = client.AppsV1Api(self._api)
        self.policy = client.PolicyV1Api(self._api)
        self.discovery = client.DiscoveryV1Api(self._api)
        self.autoscaling = client.AutoscalingV2Api(self._api)
        self.networking = client.NetworkingV1Api(self._api)
        self._creators: dict[str, Callable[[str, Obj], Any]] = {  # the kinds a variant may hold
            DEPLOYMENT: self.apps.create_namespaced_deployment,
            STATEFULSET: self.apps.create_namespaced_stateful_set,
            DAEMONSET: self.apps.create_namespaced_daemon_set,
            "Service": self.core.create_namespaced_service,
            "PodDisruptionBudget": self.policy.create_namespaced_pod_disruption_budget,
            "ConfigMap": self.core.create_namespaced_config_map,
            "Pod": self.core.create_namespaced_pod,
            "HorizontalPodAutoscaler": self.autoscaling.create_namespaced_horizontal_pod_autoscaler,
            "Ingress": self.networking.create_namespaced_ingress,
        }
        self._workloads = {
            DEPLOYMENT: _WorkloadCalls(
                self.apps.read_namespaced_deployment_status, self.apps.patch_namespaced_deployment, self._replicaset_revisions
            ),
            STATEFULSET: _WorkloadCalls(
                self.apps.read_namespaced_stateful_set_status, self.apps.patch_namespaced_stateful_set, self._controller_revisions
            ),
            DAEMONSET: _WorkloadCalls(
                self.apps.read_namespaced_daemon_set_status,
                self.apps.patch_namespaced_daemon_set,
                self._controller_revisions,
                daemonset_status,
            ),
        }

    def close(self) -> None:
        self._api.close()

    @property
    def server(self) -> str:
        """The API server's URL, as the kubeconfig gives it."""
        return str(self._api.configuration.host)

    def ping(self) -> str:
        """The API server's version; ClusterError naming its URL and why if it does not answer."""
        try:
            info = client.VersionApi(self._api).get_code(_request_timeout=5)
        except ApiException as e:
            raise api_error(f"reach the API server {self.server}", e) from e
        except UNREACHABLE as e:
            raise ClusterError(f"cannot reach the API server {self.server}: {unanswered(e)}") from e
        return str(info.git_version)

    # namespaces -------------------------------------------------------------------------------------
    def create_namespace(self, name: str, labels: dict[str, str], owner: str) -> None:
        body = {"metadata": {"name": name, "labels": {LABEL: "true", **labels}, "annotations": {OWNER: owner}}}
        call(f"create namespace {name!r}", lambda: self.core.create_namespace(body))

    def delete_namespace(self, name: str) -> None:
        _delete(f"delete namespace {name!r}", lambda: self.core.delete_namespace(name, _request_timeout=30))

    def kill_pods(self, ns: str) -> None:
        """Delete every pod of `ns` with no grace period (its preStop hooks and drains cut short). For a namespace
        that is being deleted after its window: otherwise its pods would take their full graceful termination and
        exit (and leave the endpoints, and be torn down by the kubelet and the CNI) while the next cell is measured."""
        call(
            f"delete the pods of namespace {ns!r}",
            lambda: self.core.delete_collection_namespaced_pod(ns, grace_period_seconds=0, _request_timeout=30),
        )

    def managed_namespaces(self, selector: str = "") -> list[NamespaceView]:
        sel = f"{LABEL}=true" + (f",{selector}" if selector else "")
        res = call("list namespaces", lambda: self.core.list_namespace(label_selector=sel))
        return [
            NamespaceView(n.metadata.name, (n.metadata.annotations or {}).get(OWNER, ""), n.status.phase == "Terminating")
            for n in res.items
        ]

    def used_nodeports(self) -> set[int]:
        res = call("list services", lambda: self.core.list_service_for_all_namespaces())
        return {p.node_port for s in res.items for p in (s.spec.ports or []) if p.node_port}

    # objects ----------------------------------------------------------------------------------------
    def create(self, ns: str, obj: Obj) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind not in self._creators:
            raise RolloutError(f"cannot create {kind} {name!r}: kind not supported ({', '.join(self._creators)})")
        call(f"create {kind.lower()} {name!r} in {ns}", lambda: self._creators[kind](ns, obj))

    def proxy_config(self, timeout: float = 10) -> str:
        """kube-proxy's config.conf from the kube-system/kube-proxy ConfigMap (kubeadm and kind write one); read
        its mode with kubeviews.proxy_mode_of."""
        cm = call(
            "read kube-proxy's configuration",
            lambda: self.core.read_namespaced_config_map("kube-proxy", "kube-system", _request_timeout=timeout),
        )
        return str((cm.data or {}).get("config.conf", ""))

    def proxy_mode(self) -> str:
        """kube-proxy's mode, `unknown` if unreadable (a cluster without kube-proxy, or one we may not read)."""
        try:
            return proxy_mode_of(self.proxy_config())
        except (RolloutError, ClusterError):
            return "unknown"

    def config_map(self, ns: str, name: str) -> ConfigMapView | None:
        """The ConfigMap, None if there is none."""
        try:
            cm = call(f"read configmap {ns}/{name}", lambda: self.core.read_namespaced_config_map(name, ns, _request_timeout=30))
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return ConfigMapView(str(cm.metadata.uid), dict(cm.data or {}))

    def service_address(self, ns: str, name: str) -> tuple[str, int]:
        """The Service's ClusterIP and first port."""
        svc = call(f"read service {name!r}", lambda: self.core.read_namespaced_service(name, ns))
        return str(svc.spec.cluster_ip), int(svc.spec.ports[0].port)

    def _workload(self, kind: str) -> _WorkloadCalls:
        if kind not in self._workloads:
            raise RolloutError(f"cannot act on a {kind}: kind not supported ({', '.join(self._workloads)})")
        return self._workloads[kind]

    def rollout_status(self, ns: str, kind: str, name: str) -> DeploymentStatus:
        """The workload's rollout status (only a Deployment has a Progressing condition, so only it reports a stalled
        rollout)."""
        calls = self._workload(kind)
        return calls.status(call(f"read {kind.lower()} {name!r}", lambda: calls.read_status(name, ns)))

    def patch_workload(self, ns: str, kind: str, name: str, patch: Obj | list[Obj], what: str) -> None:
        ctype = "application/json-patch+json" if isinstance(patch, list) else "application/strategic-merge-patch+json"
        patch_call = self._workload(kind).patch
        call(f"{what} ({kind.lower()} {name!r})", lambda: patch_call(name, ns, patch, _content_type=ctype))

    def revisions(self, ns: str, kind: str, selector: str) -> list[Revision]:
        """The workload's revisions, oldest first (what `kubectl rollout undo` reads): a Deployment's ReplicaSets, a
        StatefulSet's or DaemonSet's ControllerRevisions."""
        return sorted(self._workload(kind).revisions(ns, selector), key=lambda r: r.number)

    def _replicaset_revisions(self, ns: str, selector: str) -> list[Revision]:
        out = []
        for rs in call("list replicasets", lambda: self.apps.list_namespaced_replica_set(ns, label_selector=selector)).items:
            number = int((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))
            template = json.loads(json.dumps(self._api.sanitize_for_serialization(rs.spec.template)))
            template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
            out.append(Revision(number, template))
        return out

    def _controller_revisions(self, ns: str, selector: str) -> list[Revision]:
        out = []
        for cr in call(
            "list controllerrevisions", lambda: self.apps.list_namespaced_controller_revision(ns, label_selector=selector)
        ).items:
            template = dict(cr.data["spec"]["template"])
            template.pop("$patch", None)
            out.append(Revision(int(cr.revision), template))
        return out

    def autoscaler(self, ns: str, name: str) -> AutoscalerView:
        hpa = call(f"read autoscaler {name!r}", lambda: self.autoscaling.read_namespaced_horizontal_pod_autoscaler_status(name, ns))
        return autoscaler_view(hpa)

    def patch_autoscaler(self, ns: str, name: str, patch: Obj) -> None:
        call(f"patch autoscaler {name!r}", lambda: self.autoscaling.patch_namespaced_horizontal_pod_autoscaler(name, ns, patch))

    def list_pods(self, ns: str, selector: str) -> list[PodView]:
        return [pod_view(p) for p in call("list pods", lambda: self.core.list_namespaced_pod(ns, label_selector=selector)).items]

    def delete_pod(self, ns: str, name: str, grace: int | None = None) -> None:
        _delete(f"delete pod {name!r}", lambda: self.core.delete_namespaced_pod(name, ns, grace_period_seconds=grace))

    def endpoint_slices(self, ns: str, service: str) -> list[SliceView]:
        sel = f"kubernetes.io/service-name={service}"
        res = call(f"list endpointslices of {service!r}", lambda: self.discovery.list_namespaced_endpoint_slice(ns, label_selector=sel))
        return [slice_view(s) for s in res.items]

    # nodes and eviction ----------------------------------------------------------------------------
    def node_ready(self, node: str) -> bool:
        n = call(f"read node {node!r}", lambda: self.core.read_node_status(node))
        return any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])

    def nodes(self) -> list[NodeView]:
        return [node_view(n) for n in call("list nodes", lambda: self.core.list_node(_request_timeout=30)).items]

    def update_node(self, node: str, what: str, change: NodeChange) -> bool:
        """Read the node and patch it with change(view), unless that is None; the patch carries the resourceVersion
        read, so it applies only if the node did not change in between (read again and retried if it did). True when
        patched."""
        for _ in range(CONFLICT_RETRIES):
            view = node_view(call(f"read node {node!r}", lambda: self.core.read_node(node, _request_timeout=30)))
            patch = change(view)
            if patch is None:
                return False
            body = patch | {"metadata": patch.get("metadata", {}) | {"resourceVersion": view.version}}
            ctype = "application/strategic-merge-patch+json"
            try:
                call(f"{what} node {node!r}", functools.partial(self.core.patch_node, node, body, _content_type=ctype, _request_timeout=30))
                return True
            except ApiError as e:
                if e.status != 409:
                    raise
        raise RolloutError(f"failed to {what} node {node!r}: it changed every time it was read ({CONFLICT_RETRIES} times)")

    def evict(self, ns: str, pod: str) -> bool:
        """True when evicted (or already gone); False when a PodDisruptionBudget refuses it now (429)."""
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod, namespace=ns))
        try:
            call(f"evict pod {pod!r}", lambda: self.core.create_namespaced_pod_eviction(pod, ns, body))
        except ApiError as e:
            if e.status == 429:
                return False
            if e.status != 404:
                raise
        return True


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
