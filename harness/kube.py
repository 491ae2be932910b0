"""The only module that calls the (synchronous) official Kubernetes client. Callers use asyncio.to_thread.

Every ApiException is wrapped at this boundary into RolloutError/ClusterError naming the action and object.
"""

from __future__ import annotations

import datetime as dt
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
Obj = dict[str, Any]


def _reason(e: ApiException) -> str:
    return f"{e.status} {e.reason}"


def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as e:
        raise RolloutError(f"failed to {what}: {_reason(e)}") from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise ClusterError(f"failed to {what}: the API server is unreachable ({type(e).__name__})") from e


@dataclass(frozen=True)
class DeploymentStatus:
    generation: int
    observed: int
    replicas: int
    updated: int
    ready: int
    available: int
    total: int
    stalled: str  # non-empty when Progressing=False (e.g. ProgressDeadlineExceeded)

    @property
    def complete(self) -> bool:
        return (
            self.observed >= self.generation
            and self.updated == self.replicas
            and self.total == self.replicas
            and self.available == self.replicas
        )


class Kube:
    def __init__(self, kubeconfig: Path) -> None:
        try:
            self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        except Exception as e:  # config errors come in many types
            raise ClusterError(f"cannot load kubeconfig {kubeconfig}: {e}") from e
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.policy = client.PolicyV1Api(self.api_client)
        self.discovery = client.DiscoveryV1Api(self.api_client)

    def close(self) -> None:
        self.api_client.close()

    def ping(self) -> str:
        info = _call("reach the API server", lambda: client.VersionApi(self.api_client).get_code(_request_timeout=5))
        return str(info.git_version)

    # namespaces -------------------------------------------------------------------------------------
    def create_namespace(self, name: str, labels: dict[str, str]) -> None:
        body = {"metadata": {"name": name, "labels": {LABEL: "true", **labels}}}
        _call(f"create namespace {name!r}", lambda: self.core.create_namespace(body))

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, _request_timeout=30)
        except ApiException as e:
            if e.status != 404:
                raise RolloutError(f"failed to delete namespace {name!r}: {_reason(e)}") from e

    def managed_namespaces(self) -> list[str]:
        res = _call("list namespaces", lambda: self.core.list_namespace(label_selector=f"{LABEL}=true"))
        return [n.metadata.name for n in res.items]

    def used_nodeports(self) -> set[int]:
        res = _call("list services", lambda: self.core.list_service_for_all_namespaces())
        return {p.node_port for s in res.items for p in (s.spec.ports or []) if p.node_port}

    # objects ----------------------------------------------------------------------------------------
    def create(self, ns: str, obj: Obj) -> None:
        kind, name = obj["kind"], obj["metadata"]["name"]
        creators: dict[str, Callable[[], Any]] = {
            "Deployment": lambda: self.apps.create_namespaced_deployment(ns, obj),
            "Service": lambda: self.core.create_namespaced_service(ns, obj),
            "PodDisruptionBudget": lambda: self.policy.create_namespaced_pod_disruption_budget(ns, obj),
            "ConfigMap": lambda: self.core.create_namespaced_config_map(ns, obj),
        }
        if kind not in creators:
            raise RolloutError(f"cannot create {kind} {name!r}: kind not supported (Deployment, Service, PodDisruptionBudget, ConfigMap)")
        _call(f"create {kind.lower()} {name!r} in {ns}", creators[kind])

    def deployment_status(self, ns: str, name: str) -> DeploymentStatus:
        d = _call(f"read deployment {name!r}", lambda: self.apps.read_namespaced_deployment_status(name, ns))
        st = d.status
        stalled = ""
        for c in st.conditions or []:
            if c.type == "Progressing" and c.status == "False":
                stalled = f"{c.reason}: {c.message}"
        pods = self.list_pods(ns, "app=web")
        total = sum(1 for p in pods if p.metadata.deletion_timestamp is None)
        return DeploymentStatus(
            d.metadata.generation or 0,
            st.observed_generation or 0,
            d.spec.replicas or 0,
            st.updated_replicas or 0,
            st.ready_replicas or 0,
            st.available_replicas or 0,
            total,
            stalled,
        )

    def patch_deployment(self, ns: str, name: str, patch: Obj | list[Obj], what: str) -> None:
        ctype = "application/json-patch+json" if isinstance(patch, list) else "application/strategic-merge-patch+json"
        _call(f"{what} (deployment {name!r})", lambda: self.apps.patch_namespaced_deployment(name, ns, patch, _content_type=ctype))

    def replica_sets(self, ns: str, selector: str) -> list[Any]:
        return list(_call("list replicasets", lambda: self.apps.list_namespaced_replica_set(ns, label_selector=selector)).items)

    def list_pods(self, ns: str, selector: str) -> list[Any]:
        return list(_call("list pods", lambda: self.core.list_namespaced_pod(ns, label_selector=selector)).items)

    # nodes and eviction ----------------------------------------------------------------------------
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
            self.core.create_namespaced_pod_eviction(pod, ns, body)
            return True
        except ApiException as e:
            if e.status == 429:
                return False
            if e.status == 404:
                return True
            raise RolloutError(f"failed to evict pod {pod!r}: {_reason(e)}") from e

    # watches ------------------------------------------------------------------------------------------
    def stream(self, kind: str, ns: str, stop: Callable[[], bool]) -> Iterator[tuple[float, str, Any]]:
        """Yield (wall time, event type, object) for Pods or EndpointSlices until stop() is true."""
        lister = self.core.list_namespaced_pod if kind == "pod" else self.discovery.list_namespaced_endpoint_slice
        rv: str | None = None
        while not stop():
            w = watch.Watch()
            kw: dict[str, Any] = {"timeout_seconds": 2, "_request_timeout": 5}
            if rv:
                kw["resource_version"] = rv
            try:
                for ev in w.stream(lister, ns, **kw):
                    yield time.time(), ev["type"], ev["object"]
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
