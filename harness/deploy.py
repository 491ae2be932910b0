"""Put one variant on the cluster: a fresh labelled namespace, its objects, a NodePort, and wait until it serves.

Namespaces carry the managed label and an owner annotation (harness.owner), so a run only ever deletes its own
namespaces, or leftovers of harness processes that are demonstrably dead.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import hostlock, owner
from harness.errors import ClusterError
from harness.kube import LABEL, Kube
from harness.manifests import Variant, slug
from harness.workload import Workload

log = logging.getLogger("harness.deploy")


@dataclass(frozen=True)
class Deployed:
    url: str
    """The NodePort URL on 127.0.0.1 ("" without a NodePort)."""
    workload: Workload


class PortPool:
    """The NodePorts mapped to 127.0.0.1, handed out least recently used first. Release times persist in
    `state` (when given) so that consecutive harness processes rotate too: a port's iptables rules and
    conntrack entries may still point at the previous run's dying pods."""

    def __init__(self, ports: range, state: Path | None = None) -> None:
        self.ports = ports
        self.state = state

    def _last_used(self) -> dict[str, float]:
        try:
            return {str(k): float(v) for k, v in json.loads(self.state.read_text()).items()} if self.state else {}
        except (OSError, ValueError, AttributeError):
            return {}

    def take(self, in_use: set[int]) -> int:
        """The least recently used port not in in_use. Concurrent harness processes on this host never get the
        same port: the read-pick-write runs under a host lock (a port is marked used before the lock is released)."""
        with hostlock.held("nodeports"):
            last = self._last_used()
            free = [p for p in self.ports if p not in in_use]
            if not free:
                raise ClusterError(f"all mapped NodePorts {self.ports.start}-{self.ports.stop - 1} are in use")
            port = min(free, key=lambda p: (last.get(str(p), 0.0), p))
            if self.state is not None:
                last[str(port)] = time.time()
                self.state.parent.mkdir(parents=True, exist_ok=True)
                self.state.write_text(json.dumps(last))
            return port


def render(variant: Variant, node_port: int | None, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Fresh copies of the variant's objects with the NodePort and the harness labels set (the variant is untouched)."""
    dep = copy.deepcopy(variant.deployment) | {"kind": variant.deployment.get("kind", "Deployment"), "apiVersion": "apps/v1"}
    svc = copy.deepcopy(variant.service)
    if node_port is None:  # the cluster picks one (or none for a ClusterIP Service)
        svc["spec"]["ports"][0].pop("nodePort", None)
    else:  # the host client enters through this NodePort (kind maps it to 127.0.0.1)
        svc["spec"]["type"] = "NodePort"
        svc["spec"]["ports"][0]["nodePort"] = node_port
    objs = [dep, svc, *copy.deepcopy(list(variant.objects))]
    for obj in objs:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update({LABEL: "true", **labels})
    return objs


def namespace_name(variant: str, trigger: str) -> str:
    return f"rh-{slug(variant)[:28].strip('-')}-{trigger[:9]}-{uuid.uuid4().hex[:6]}"


def label_value(text: str) -> str:
    """`text` as a valid label value: at most 63 of [A-Za-z0-9._-], alphanumeric at both ends (`a+b` → `a.b`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", ".", text)[:63].strip("._-")


async def deploy(kube: Kube, variant: Variant, ns: str, port: int | None, labels: dict[str, str], path: str = "/") -> Deployed:
    await asyncio.to_thread(kube.create_namespace, ns, labels, owner.me())
    for obj in render(variant, port, labels):
        await asyncio.to_thread(kube.create, ns, obj)
    return Deployed(
        f"http://127.0.0.1:{port}{path}" if port else "", Workload.from_objects(variant.deployment, variant.service, variant.objects)
    )
