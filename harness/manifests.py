"""Load the base objects and a variant overlay (YAML data, no code) into plain Kubernetes object dicts."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError
from harness.resources import manifests_dir

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
                out[k] = merge(out[k], v) if k in out else copy.deepcopy(v)
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


def _read_yaml(path: Path) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', e)}") from e
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e


def available(root: Path | None = None) -> list[str]:
    """Variant names under `root` (default: the bundled manifests); an empty or missing directory is a usage error."""
    root = root or manifests_dir()
    names = sorted(p.stem for p in (root / "variants").glob("*.yaml"))
    if not names:
        raise UsageError(f"no variants under {root} (expected variants/*.yaml)")
    return names


def _variant_doc(root: Path, name: str) -> dict[str, Any]:
    path = root / "variants" / f"{name}.yaml"
    if not path.exists():
        raise UsageError(f"unknown variant {name!r}; available: {', '.join(available(root))}")
    docs = _read_yaml(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise UsageError(f"{path}: expected one YAML mapping")
    doc = docs[0]
    unknown = set(doc) - {"name", "description", "base", "deployment", "objects", "update_env"}
    if unknown:
        raise UsageError(f"{path}: unknown keys {sorted(unknown)}")
    if doc.get("name") != name:
        raise UsageError(f"{path}: name {doc.get('name')!r} does not match the file name")
    return doc


def load_variant(name: str, root: Path | None = None) -> Variant:
    root = root or manifests_dir()
    base_docs = _read_yaml(root / "base.yaml")
    by_kind = {d.get("kind"): d for d in base_docs if isinstance(d, dict)}
    if "Deployment" not in by_kind or "Service" not in by_kind:
        raise UsageError(f"{root / 'base.yaml'}: needs one Deployment and one Service")
    chain: list[dict[str, Any]] = []
    cur: str | None = name
    while cur is not None:
        if any(d["name"] == cur for d in chain):
            raise UsageError(f"variant {name!r}: base chain loops at {cur!r}")
        doc = _variant_doc(root, cur)
        chain.append(doc)
        cur = doc.get("base")
    deployment: Obj = copy.deepcopy(by_kind["Deployment"])
    objects: dict[tuple[str, str], Obj] = {}
    update_env: dict[str, str] = {}
    for doc in reversed(chain):
        deployment = merge(deployment, doc.get("deployment") or {})
        for obj in doc.get("objects") or []:
            if not isinstance(obj, dict) or "kind" not in obj:
                raise UsageError(f"variant {doc['name']!r}: every object needs a kind")
            objects[(obj["kind"], obj.get("metadata", {}).get("name", ""))] = copy.deepcopy(obj)
        update_env.update({str(k): str(v) for k, v in (doc.get("update_env") or {}).items()})
    return Variant(
        name=name,
        description=str(chain[0].get("description", "")),
        deployment=deployment,
        service=copy.deepcopy(by_kind["Service"]),
        objects=tuple(objects.values()),
        update_env=update_env,
        chain=tuple(d["name"] for d in chain),
    )


WORKLOAD_KINDS = ("Deployment", "Service", "PodDisruptionBudget", "ConfigMap")


def load_workload(path: Path, port: int | None = None) -> Variant:
    """Your own workload as a variant: one Deployment, the Service whose selector matches its pods (any names,
    labels, container and ports), and extra objects of the kinds the harness can create. Namespaces in the file
    are dropped (every cell gets a fresh one). port: the Service port the load goes to (default: its first)."""
    docs = [d for d in _read_yaml(path) if isinstance(d, dict)]
    deployments = [d for d in docs if d.get("kind") == "Deployment"]
    if len(deployments) != 1:
        raise UsageError(f"{path}: needs exactly one Deployment (found {len(deployments)})")
    dep = copy.deepcopy(deployments[0])
    try:
        pod_labels = dep["spec"]["template"]["metadata"]["labels"] or {}
        dep["spec"]["template"]["spec"]["containers"][0]["image"]
    except (KeyError, IndexError, TypeError):
        raise UsageError(f"{path}: the Deployment needs spec.template.metadata.labels and a container with an image") from None

    def selects(svc: Obj) -> bool:
        sel = (svc.get("spec") or {}).get("selector") or {}
        return bool(sel) and all(pod_labels.get(k) == v for k, v in sel.items())

    services = [d for d in docs if d.get("kind") == "Service" and selects(d)]
    if not services:
        raise UsageError(f"{path}: needs a Service whose selector matches the Deployment's pod labels {pod_labels}")
    svc = copy.deepcopy(services[0])
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ports:
        raise UsageError(f"{path}: Service {svc.get('metadata', {}).get('name')!r} has no ports")
    if port is not None:
        chosen = [p for p in ports if p.get("port") == port]
        if not chosen:
            raise UsageError(f"--port {port}: Service {svc['metadata'].get('name')!r} has ports {[p.get('port') for p in ports]}")
        svc["spec"]["ports"] = chosen + [p for p in ports if p is not chosen[0]]
    others = [copy.deepcopy(d) for d in docs if d is not deployments[0] and d is not services[0]]
    for o in others:
        if o.get("kind") not in WORKLOAD_KINDS:
            raise UsageError(f"{path}: cannot create {o.get('kind')!r} objects; supported: {', '.join(WORKLOAD_KINDS)}")
    for o in (dep, svc, *others):
        o.setdefault("metadata", {}).pop("namespace", None)
    return Variant(
        name=path.stem.lower().replace("_", "-"),
        description=f"your workload {path.name}: deployment {dep['metadata'].get('name')!r}",
        deployment=dep,
        service=svc,
        objects=tuple(others),
    )
