"""Your workload file, written by hand or exported with `kubectl get -o yaml`, into the objects a cell creates: one
apps/v1 Deployment whose selector selects its pods, the Service in front of them (the port the load goes to first),
and extra objects of the kinds the harness can create. A `kind: List` (what kubectl writes for several objects) gives
its items. What the API server set when it created an object (status, uid, resourceVersion, ..., a Service's cluster
IPs and node ports) and namespaces are dropped, so every cell creates the objects afresh in its own namespace.
Anything the harness cannot run is one UsageError naming the file and what to change."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.yamlfile import read_yaml

Obj = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "Service", "PodDisruptionBudget", "ConfigMap")
SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink", "namespace")
"""Metadata a create refuses, ignores or that would differ per cell (the namespace: each cell has its own)."""
SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")


def read_workload(path: Path, port: int | None = None) -> tuple[Obj, Obj, list[Obj]]:
    """(Deployment, Service, other objects) from the file; the Service's ports start with `port` (default: its first
    TCP port)."""
    docs = _objects(path)
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        raise UsageError(f"{path}: needs exactly one Deployment (found {len(deployments)})")
    dep = deployments[0]
    pod_labels = _pod_labels(path, dep)

    def selects(svc: Obj) -> bool:
        sel = (svc.get("spec") or {}).get("selector") or {}
        return bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items())

    services = sorted((d for d in docs if d.get("kind") == "Service" and selects(d)), key=lambda d: not _tcp_ports(d))
    if not services:
        raise UsageError(f"{path}: needs a Service whose selector matches the Deployment's pod labels {pod_labels}")
    svc = services[0]
    name = svc.get("metadata", {}).get("name")
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ports:
        raise UsageError(f"{path}: Service {name!r} has no ports")
    tcp = _tcp_ports(svc)
    if not tcp:
        given = ", ".join(f"{p.get('port')}/{p.get('protocol')}" for p in ports)
        raise UsageError(f"{path}: Service {name!r} has no TCP port ({given}); the load is HTTP over TCP")
    chosen = [p for p in tcp if p.get("port") == port] if port is not None else tcp
    if not chosen:
        raise UsageError(f"--port {port}: Service {name!r} has TCP ports {[p.get('port') for p in tcp]}")
    svc["spec"]["ports"] = [chosen[0]] + [p for p in ports if p is not chosen[0]]
    others = [d for d in docs if d is not dep and d is not svc]
    for o in others:
        if o.get("kind") not in WORKLOAD_KINDS:
            raise UsageError(f"{path}: cannot create {o.get('kind')!r} objects; supported: {', '.join(WORKLOAD_KINDS)}")
    return dep, svc, others


def _objects(path: Path) -> list[Obj]:
    """The file's objects as new ones (module docstring), a List's items in its place."""
    docs: list[Obj] = []
    for d in read_yaml(path):
        kind = d.get("kind") if isinstance(d, dict) else None
        if isinstance(kind, str) and kind.endswith("List") and isinstance(d.get("items"), list):
            items = [i for i in d["items"] if isinstance(i, dict)]
            docs += [{"kind": kind.removesuffix("List"), **i} if kind != "List" else i for i in items]  # DeploymentList ...
        elif isinstance(d, dict):
            docs.append(d)
    for d in docs:
        if not all(isinstance(d.get(k, {}), dict) for k in ("metadata", "spec")):
            raise UsageError(f"{path}: a {d.get('kind')!r} object whose metadata or spec is not a mapping")
    return [_as_new(d) for d in docs]


def _as_new(obj: Obj) -> Obj:
    obj = {k: copy.deepcopy(v) for k, v in obj.items() if k != "status"}
    meta = obj.setdefault("metadata", {})
    for k in SERVER_SET:
        meta.pop(k, None)
    if isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k not in SERVER_ANNOTATIONS}
    spec = obj.get("spec")
    if obj.get("kind") == "Service" and spec:
        if spec.get("clusterIP") != "None":  # a headless Service stays headless; any other gets a new IP
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.pop("nodePort", None)  # node ports are cluster-wide: a fixed one would clash between cells
    return obj


def _pod_labels(path: Path, dep: Obj) -> dict[str, Any]:
    """The Deployment's pod labels, if it is an apps/v1 Deployment whose selector selects them and whose first
    container has an image; else UsageError saying which."""
    name = (dep.get("metadata") or {}).get("name")
    api = dep.get("apiVersion", "apps/v1")
    if api != "apps/v1":
        raise UsageError(
            f"{path}: Deployment {name!r} is {api}, which Kubernetes no longer serves; the harness creates apps/v1: "
            "set apiVersion: apps/v1 and spec.selector.matchLabels (kubectl convert does both)"
        )
    try:
        pod_labels = dep["spec"]["template"]["metadata"]["labels"] or {}
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
        if not isinstance(pod_labels, dict):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise UsageError(f"{path}: the Deployment needs spec.template.metadata.labels and a container with an image") from None
    selector = dep["spec"].get("selector")
    match = selector.get("matchLabels") if isinstance(selector, dict) else None
    if not match or not isinstance(match, dict):
        raise UsageError(
            f"{path}: Deployment {name!r} needs spec.selector.matchLabels (apps/v1 requires a selector; the harness finds its pods by it)"
        )
    if any(pod_labels.get(k) != v for k, v in match.items()):
        raise UsageError(f"{path}: Deployment {name!r}: spec.selector.matchLabels {match} does not select its pod labels {pod_labels}")
    return pod_labels


def _tcp_ports(svc: Obj) -> list[Obj]:
    ports = (svc.get("spec") or {}).get("ports") or []
    return [p for p in ports if isinstance(p, dict) and p.get("protocol", "TCP") == "TCP"]
