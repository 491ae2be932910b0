"""What the harness reads from the cluster, as small frozen views, and the converters that make them from the
client's model objects (read by attribute: this module imports no Kubernetes client).

harness.kube returns these; client model objects never leave harness.kube and harness.kubewatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.model import EndpointState, PodState

Obj = dict[str, Any]

CORDONED_BY = "rollout-harness.io/cordoned-by"
"""Annotation on a node the harness cordoned (set in the same patch as the cordon): the owner (harness.owner)."""
FROZEN_BY = "rollout-harness.io/frozen-by"
"""Annotation on a node whose machine the harness froze (node-down): the owner (harness.owner)."""
CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
"""Labels and taint keys that make a node a control-plane node (the second on clusters older than 1.24)."""


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
    def state(self) -> PodState:
        """One word for the timeline: terminating, ready, running, scheduled or pending."""
        if self.deleting:
            return PodState.TERMINATING
        if self.ready:
            return PodState.READY
        if self.node:
            return PodState.RUNNING if self.phase == "Running" else PodState.SCHEDULED
        return PodState.PENDING


@dataclass(frozen=True)
class EndpointView:
    pod: str
    ready: bool
    serving: bool

    @property
    def state(self) -> EndpointState:
        if self.ready:
            return EndpointState.READY
        return EndpointState.SERVING_TERMINATING if self.serving else EndpointState.NOT_READY


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
    owner: str  # the harness process that created it (harness.owner; "" if unknown)
    terminating: bool


@dataclass(frozen=True)
class NodeView:
    name: str
    control_plane: bool
    """Labelled or tainted as a control-plane node (CONTROL_PLANE)."""
    unschedulable: bool
    """Cordoned (spec.unschedulable), by whoever did it."""
    cordoned_by: str = ""
    """The owner of the harness process that cordoned it (CORDONED_BY), "" if none did."""
    frozen_by: str = ""
    """The owner of the harness process that froze it (FROZEN_BY), "" if none did."""
    version: str = ""
    """metadata.resourceVersion when read: a patch carrying it applies only to the node as read."""


@dataclass(frozen=True)
class ConfigMapView:
    uid: str
    data: dict[str, str]


def node_view(n: Any) -> NodeView:
    labels, notes = n.metadata.labels or {}, n.metadata.annotations or {}
    taints = {t.key for t in n.spec.taints or []}
    return NodeView(
        name=n.metadata.name,
        control_plane=any(k in labels or k in taints for k in CONTROL_PLANE),
        unschedulable=bool(n.spec.unschedulable),
        cordoned_by=notes.get(CORDONED_BY, ""),
        frozen_by=notes.get(FROZEN_BY, ""),
        version=n.metadata.resource_version or "",
    )


def pod_view(p: Any) -> PodView:
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


def slice_view(s: Any) -> SliceView:
    eps = []
    for ep in s.endpoints or []:
        ref = ep.target_ref
        if ref is None or ref.kind != "Pod":
            continue
        c = ep.conditions
        eps.append(EndpointView(ref.name, bool(c and c.ready), bool(c and c.serving)))
    return SliceView(s.metadata.name, tuple(eps))


def deployment_status(obj: Any) -> DeploymentStatus:
    """A Deployment's or a StatefulSet's status (a StatefulSet has no Progressing condition: never stalled)."""
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


@dataclass(frozen=True)
class AutoscalerView:
    """A HorizontalPodAutoscaler as the hpa-scale-in trigger reads it."""

    current: int
    desired: int
    min_replicas: int
    metrics: bool
    """It has read the metric it scales on (metrics-server answers for every pod)."""
    why: str
    """Its conditions that are not True, as `Type: reason: message`."""


def autoscaler_view(hpa: Any) -> AutoscalerView:
    st = hpa.status
    why = "; ".join(f"{c.type}: {c.reason}: {c.message}" for c in st.conditions or [] if c.status != "True")
    return AutoscalerView(
        st.current_replicas or 0,
        st.desired_replicas or 0,
        hpa.spec.min_replicas or 1,
        any(m.resource and m.resource.current and m.resource.current.average_utilization is not None for m in st.current_metrics or []),
        why,
    )


def daemonset_status(obj: Any) -> DeploymentStatus:
    """A DaemonSet's status in a Deployment's terms: the pods it should run (one per eligible node) as its replicas;
    never stalled (it has no Progressing condition)."""
    st = obj.status
    return DeploymentStatus(
        obj.metadata.generation or 0,
        st.observed_generation or 0,
        st.desired_number_scheduled or 0,
        st.updated_number_scheduled or 0,
        st.number_ready or 0,
        st.number_available or 0,
        "",
    )


def proxy_mode_of(conf: str) -> str:
    """The mode in kube-proxy's config.conf (KubeProxyConfiguration YAML); empty or absent means iptables."""
    m = re.search(r"^mode:\s*\"?([a-z]*)", conf, re.MULTILINE)
    return (m.group(1) if m else "") or "iptables"
