"""Load the base objects and a variant overlay (YAML data, no code) into plain Kubernetes object dicts."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.resources import manifests_dir
from harness.workloadfile import read_workload
from harness.yamlfile import read_yaml

Obj = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    deployment: Obj
    service: Obj
    objects: tuple[Obj, ...] = ()
    update_env: dict[str, str] = field(default_factory=dict)
    chain: tuple[str, ...] = ()


def merge(base: Any, over: Any) -> Any:
    """Deep merge: dicts by key (None deletes), lists of dicts with `name` by name, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(out[k], v) if k in out else _without_nulls(v)
        return out
    if isinstance(base, list) and isinstance(over, list) and all(isinstance(x, dict) and "name" in x for x in base + over):
        merged = [copy.deepcopy(x) for x in base]
        index = {x["name"]: i for i, x in enumerate(merged)}
        for x in over:
            if x["name"] in index:
                merged[index[x["name"]]] = merge(merged[index[x["name"]]], x)
            else:
                merged.append(copy.deepcopy(x))
        return merged
    return copy.deepcopy(over)


def _without_nulls(x: Any) -> Any:
    """A copy of an overlay part that adds to nothing: its null keys (deletions) have nothing to delete."""
    if isinstance(x, dict):
        return {k: _without_nulls(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_without_nulls(v) for v in x]
    return copy.deepcopy(x)


VARIANTS, OVERLAYS = "variants", "overlays"
KEYS = {
    VARIANTS: {"name", "description", "base", "deployment", "service", "objects", "update_env"},
    OVERLAYS: {"name", "description", "base", "deployment", "objects", "remove_kinds"},
}


def available(root: Path | None = None, kind: str = VARIANTS) -> list[str]:
    """Variant (or overlay) names under `root` (default: the bundled manifests); none is a usage error."""
    root = root or manifests_dir()
    names = sorted(p.stem for p in (root / kind).glob("*.yaml"))
    if not names:
        raise UsageError(f"no {kind} under {root} (expected {kind}/*.yaml)")
    return names


def _doc(root: Path, name: str, kind: str) -> dict[str, Any]:
    path = root / kind / f"{name}.yaml"
    if not path.exists():
        raise UsageError(f"unknown {kind[:-1]} {name!r}; available: {', '.join(available(root, kind))}")
    docs = read_yaml(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise UsageError(f"{path}: expected one YAML mapping")
    doc = docs[0]
    unknown = set(doc) - KEYS[kind]
    if unknown:
        raise UsageError(f"{path}: unknown keys {sorted(unknown)}")
    if doc.get("name") != name:
        raise UsageError(f"{path}: name {doc.get('name')!r} does not match the file name")
    return doc


def describe(name: str, root: Path | None = None, kind: str = VARIANTS) -> str:
    return str(_doc(root or manifests_dir(), name, kind).get("description", ""))


def _chain(root: Path, name: str, kind: str) -> list[dict[str, Any]]:
    """The named document and its bases, the named one first."""
    chain: list[dict[str, Any]] = []
    cur: str | None = name
    while cur is not None:
        if any(d["name"] == cur for d in chain):
            raise UsageError(f"{kind[:-1]} {name!r}: base chain loops at {cur!r}")
        doc = _doc(root, cur, kind)
        chain.append(doc)
        cur = doc.get("base")
    return chain


def load_variant(name: str, root: Path | None = None) -> Variant:
    root = root or manifests_dir()
    base_docs = read_yaml(root / "base.yaml")
    by_kind = {d.get("kind"): d for d in base_docs if isinstance(d, dict)}
    if "Deployment" not in by_kind or "Service" not in by_kind:
        raise UsageError(f"{root / 'base.yaml'}: needs one Deployment and one Service")
    chain = _chain(root, name, VARIANTS)
    deployment: Obj = copy.deepcopy(by_kind["Deployment"])
    objects: dict[tuple[str, str], Obj] = {}
    update_env: dict[str, str] = {}
    service: Obj = copy.deepcopy(by_kind["Service"])
    for doc in reversed(chain):
        deployment = merge(deployment, doc.get("deployment") or {})
        service = merge(service, doc.get("service") or {})
        for obj in doc.get("objects") or []:
            if not isinstance(obj, dict) or "kind" not in obj:
                raise UsageError(f"variant {doc['name']!r}: every object needs a kind")
            objects[(obj["kind"], obj.get("metadata", {}).get("name", ""))] = copy.deepcopy(obj)
        update_env.update({str(k): str(v) for k, v in (doc.get("update_env") or {}).items()})
    return Variant(
        name=name,
        description=str(chain[0].get("description", "")),
        deployment=deployment,
        service=service,
        objects=tuple(objects.values()),
        update_env=update_env,
        chain=tuple(d["name"] for d in chain),
    )


def load_workload(path: Path, port: int | None = None, overlays: tuple[str, ...] = (), root: Path | None = None) -> Variant:
    """Your own workload as a variant: the file's Deployment, its Service and extra objects (harness.workloadfile:
    what it accepts and refuses; port: the Service port the load goes to, default its first TCP one).
    overlays: names under `root`/overlays (see manifests/overlays/README.md), applied in order; the variant's
    name is the file's stem followed by `+overlay` for each."""
    dep, svc, others = read_workload(path, port)
    target = svc["spec"]["ports"][0]
    fill = {
        "$container": dep["spec"]["template"]["spec"]["containers"][0]["name"],
        "$port": target.get("targetPort", target.get("port")),
        "$pod_labels": dep["spec"]["selector"]["matchLabels"],
        "$name": dep["metadata"].get("name", "app"),
    }
    described = [f"your workload {path.name}: deployment {dep['metadata'].get('name')!r}"]
    overlays = tuple(o for o in overlays if o != "as-is")
    for overlay in overlays:
        chain = _chain(root or manifests_dir(), overlay, OVERLAYS)
        for doc in (_filled(d, fill) for d in reversed(chain)):
            dep = merge(dep, doc.get("deployment") or {})
            added = [o for o in doc.get("objects") or [] if isinstance(o, dict) and "kind" in o]
            replaced = {o["kind"] for o in added} | set(doc.get("remove_kinds") or [])
            others = [o for o in others if o.get("kind") not in replaced] + added
        described.append(f"{overlay}: {chain[0].get('description', '')}")
    return Variant(
        name=workload_name(path, overlays),
        description="; ".join(described),
        deployment=dep,
        service=svc,
        objects=tuple(others),
        chain=tuple(overlays),
    )


def slug(text: str) -> str:
    """`text` reduced to lowercase letters, digits and dashes (a DNS label's alphabet), no dash at either end."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def workload_name(path: Path, overlays: tuple[str, ...] = ()) -> str:
    """A workload variant's name: the file's stem, then `+overlay` for each overlay (`as-is` adds nothing);
    RunOptions.variant reads the overlays back from it."""
    return "+".join([slug(path.stem) or "workload", *(o for o in overlays if o != "as-is")])


def _filled(x: Any, fill: dict[str, Any]) -> Any:
    """An overlay with its placeholders ($container, $port, $pod_labels, $name) replaced by the workload's values."""
    if isinstance(x, dict):
        return {k: _filled(v, fill) for k, v in x.items()}
    if isinstance(x, list):
        return [_filled(v, fill) for v in x]
    return copy.deepcopy(fill[x]) if isinstance(x, str) and x in fill else x


def as_statefulset(v: Variant) -> Variant:
    """The same pods as a StatefulSet: stable names behind a headless Service (`<name>-pods`, created with it),
    ordered rolling updates one pod at a time from the highest ordinal (a StatefulSet has no maxSurge; a
    Deployment's `strategy` and `progressDeadlineSeconds` have no counterpart and are dropped). The Service the
    load goes to stays as it is."""
    sts = copy.deepcopy(v.deployment)
    spec = sts["spec"]
    strategy = spec.pop("strategy", None) or {}
    if strategy.get("type") == "Recreate":
        raise UsageError(f"variant {v.name!r}: a Recreate strategy has no StatefulSet counterpart")
    spec.pop("progressDeadlineSeconds", None)
    headless = headless_service(v, "as a StatefulSet")
    spec["serviceName"] = headless["metadata"]["name"]
    spec["updateStrategy"] = {"type": "RollingUpdate"}
    sts["kind"] = "StatefulSet"
    return replace(
        v,
        deployment=sts,
        objects=(*v.objects, headless),
        description=f"{v.description} (as a StatefulSet)",
    )


def as_daemonset(v: Variant) -> Variant:
    """The same pod template as a DaemonSet: one pod per node, the control-plane node included (a toleration; the
    host client's NodePort enters there), as node agents and ingress proxies run. The Deployment's rolling update
    becomes the DaemonSet's (maxUnavailable, and maxSurge, which surges a node's new pod before its old one goes);
    replicas, progressDeadlineSeconds, topology spread and pod anti-affinity (a surge pod shares its node with the
    pod it replaces) have no counterpart and are dropped. The Service, and with it externalTrafficPolicy, stays."""
    ds = copy.deepcopy(v.deployment)
    spec = ds["spec"]
    strategy = spec.pop("strategy", None) or {}
    if strategy.get("type") == "Recreate":
        raise UsageError(f"variant {v.name!r}: a Recreate strategy has no DaemonSet counterpart")
    for key in ("replicas", "progressDeadlineSeconds"):
        spec.pop(key, None)
    rolling = {k: strategy.get("rollingUpdate", {})[k] for k in ("maxUnavailable", "maxSurge") if k in strategy.get("rollingUpdate", {})}
    spec["updateStrategy"] = {"type": "RollingUpdate", **({"rollingUpdate": rolling} if rolling else {})}
    pod = spec["template"]["spec"]
    pod.pop("topologySpreadConstraints", None)
    (pod.get("affinity") or {}).pop("podAntiAffinity", None)
    control_plane = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
    pod["tolerations"] = [*(pod.get("tolerations") or []), control_plane]
    ds["kind"] = "DaemonSet"
    return replace(v, deployment=ds, description=f"{v.description} (as a DaemonSet)")


MUX_PORTS = {"h2": 8081, "grpc": 8082}
"""The probe app's HTTP/2 and gRPC ports (probe_app: H2_PORT, GRPC_PORT), opened only in cells of those modes."""


def serving_mode(v: Variant, mode: str) -> Variant:
    """The bundled probe app serving `mode` (h2 or grpc) too: its port opened (env and a named container port) and
    the Service's port leading to it, so the load, its NodePort and the serving gate all speak that protocol. Other
    modes: v as it is."""
    if mode not in MUX_PORTS:
        return v
    port = MUX_PORTS[mode]
    dep = copy.deepcopy(v.deployment)
    app = dep["spec"]["template"]["spec"]["containers"][0]
    app["env"] = [*(app.get("env") or []), {"name": f"{mode.upper()}_PORT", "value": str(port)}]
    app["ports"] = [*(app.get("ports") or []), {"containerPort": port, "name": mode}]
    svc = copy.deepcopy(v.service)
    svc["spec"]["ports"][0]["targetPort"] = mode
    return replace(v, deployment=dep, service=svc, description=f"{v.description} (serving {mode} on {port})")


def pod_port(v: Variant) -> int:
    """The container port behind the load Service's first port (its targetPort, by number or by name)."""
    target = v.service["spec"]["ports"][0]
    port = target.get("targetPort", target.get("port"))
    if isinstance(port, int):
        return port
    for c in v.deployment["spec"]["template"]["spec"]["containers"]:
        for p in c.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
    raise UsageError(f"variant {v.name!r}: no container port is named {port!r} (the Service's targetPort)")


def headless_service(v: Variant, why: str) -> Obj:
    """`<name>-pods`: a headless Service over the workload's pods (ready ones only), on the pod port."""
    spec = v.deployment["spec"]
    if not (spec.get("selector") or {}).get("matchLabels"):
        raise UsageError(f"variant {v.name!r}: {why}, its selector needs matchLabels (the headless Service selects by them)")
    port = pod_port(v)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{v.deployment['metadata']['name']}-pods"},
        "spec": {
            "clusterIP": "None",
            "selector": dict(spec["selector"]["matchLabels"]),
            "publishNotReadyAddresses": False,
            "ports": [{"name": "pods", "port": port, "targetPort": port}],
        },
    }


def with_headless(v: Variant) -> Variant:
    """v with its headless Service (`<name>-pods`, see headless_service) unless it has one (a StatefulSet's)."""
    svc = headless_service(v, "for DNS discovery")
    if any(o.get("kind") == "Service" and o["metadata"].get("name") == svc["metadata"]["name"] for o in v.objects):
        return v
    return replace(v, objects=(*v.objects, svc))


REGISTRY = "registry"
"""The name of a variant's service registry Service (`--discovery registry`; see manifests/variants/registry-naive.yaml)."""


def registry_port(v: Variant) -> int:
    """The port of v's registry Service (a Service named REGISTRY among its objects); UsageError if it has none."""
    for o in v.objects:
        if o.get("kind") == "Service" and (o.get("metadata") or {}).get("name") == REGISTRY:
            return int(o["spec"]["ports"][0]["port"])
    raise UsageError(
        f"variant {v.name!r}: --discovery registry needs a service registry among its objects (a Service named {REGISTRY!r}, "
        "as registry-naive and registry-down-prestop have)"
    )


def with_ingress(v: Variant, retry: bool, host: str = "") -> Variant:
    """v with the Ingress that routes to its load Service through the Traefik controller (manifests/addons:
    traefik-ingress.yaml, or traefik-ingress-retry.yaml with the controller's retry on), matching requests for `host`
    ("" until the cell's namespace names it: any host)."""
    (ingress,) = read_yaml(manifests_dir() / "addons" / f"traefik-ingress{'-retry' if retry else ''}.yaml")
    rule = ingress["spec"]["rules"][0]
    if host:
        rule["host"] = host
    rule["http"]["paths"][0]["backend"]["service"] = {
        "name": v.service["metadata"]["name"],
        "port": {"number": int(v.service["spec"]["ports"][0]["port"])},
    }
    kept = tuple(o for o in v.objects if o.get("kind") != "Ingress")
    return replace(v, objects=(*kept, ingress))
