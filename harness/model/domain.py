"""The domain's values: triggers, modes, phases, statuses, pod and endpoint states, events, cells."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Trigger(StrEnum):
    """What disrupts the pods during the window."""

    SET_IMAGE = "set-image"
    SCALE = "scale"
    DRAIN = "drain"
    ROLLBACK = "rollback"
    RESTART = "restart"
    NODE_DOWN = "node-down"
    HPA_SCALE_IN = "hpa-scale-in"
    """The variant's HorizontalPodAutoscaler removes pods: its minimum lowered to 1, its CPU target raised far above use."""

    @property
    def repeatable(self) -> bool:
        """It can roll the same pods again and again, each rollout leaving them as a fresh set-up would (a series:
        Schedule.series). Drain and node-down move pods between nodes and take nodes away, an autoscaler's scale-in
        leaves fewer pods: never in a series."""
        return self not in (Trigger.DRAIN, Trigger.NODE_DOWN, Trigger.HPA_SCALE_IN)


class ConnMode(StrEnum):
    """How the requests use connections."""

    NEW = "new"
    """A new TCP connection per request."""
    KEEPALIVE = "keepalive"
    """`connections` reused connections, requests spread over them in turn."""
    H2 = "h2"
    """HTTP/2 cleartext with prior knowledge: each request a stream on `mux_connections` long-lived connections
    (harness.h2client)."""
    GRPC = "grpc"
    """gRPC unary calls on `mux_connections` grpcio channels, no retry policy, transparent retry on (harness.grpcclient)."""

    @property
    def multiplexed(self) -> bool:
        """Requests are streams on shared HTTP/2 connections."""
        return self in (ConnMode.H2, ConnMode.GRPC)


class Discovery(StrEnum):
    """How the client finds the pods."""

    SERVICE = "service"
    """Connect to the URL's host (a NodePort or a ClusterIP: kube-proxy picks the pod)."""
    DNS = "dns"
    """Resolve the URL's host (a headless Service) and connect to each pod IP in turn (harness.discovery)."""
    REGISTRY = "registry"
    """List the instances in the service registry the URL's host names and connect to each one's address in turn
    (harness.registryclient)."""


class Via(StrEnum):
    """The way into the cluster the host client's requests take."""

    SERVICE = "service"
    """The workload's Service: its NodePort (kind maps it to 127.0.0.1), kube-proxy picks the pod."""
    INGRESS = "ingress"
    """The Traefik ingress controller `up` installs (manifests/addons/traefik.yaml), through an Ingress the harness
    creates for the cell: Traefik balances to the pods' IPs from the EndpointSlices itself. Its retry is off."""
    INGRESS_RETRY = "ingress-retry"
    """The same with Traefik's retry middleware on (4 attempts, when no response came back)."""


class Client(StrEnum):
    """Where the load comes from."""

    HOST = "host"
    """The harness's host, through the NodePort kind maps to 127.0.0.1."""
    POD = "pod"
    """A client pod on the control-plane node, through the Service's ClusterIP (harness.clientpod)."""


class WorkloadKind(StrEnum):
    """The controller that runs the pods."""

    DEPLOYMENT = "deployment"
    STATEFULSET = "statefulset"
    """The same pods as a StatefulSet with a headless Service (manifests.as_statefulset)."""
    DAEMONSET = "daemonset"
    """The same pod template as a DaemonSet, one pod per node, the control plane's included (manifests.as_daemonset)."""

    def refuses(self, trigger: Trigger) -> str:
        """Why this kind cannot be rolled by `trigger` ("" if it can)."""
        if trigger is Trigger.HPA_SCALE_IN and self is not WorkloadKind.DEPLOYMENT:
            return "the variants' autoscalers scale a Deployment"
        if self is WorkloadKind.DAEMONSET and trigger in (Trigger.SCALE, Trigger.DRAIN, Trigger.NODE_DOWN):
            return {
                Trigger.SCALE: "a DaemonSet runs one pod per node: it has no replicas to scale",
                Trigger.DRAIN: "a drain leaves DaemonSet pods where they are (kubectl drain --ignore-daemonsets)",
                Trigger.NODE_DOWN: "a DaemonSet's pod on a lost node is not replaced elsewhere",
            }[trigger]
        return ""


class Status(StrEnum):
    """Whether a run counts toward its cell's verdict."""

    USED = "used"
    """Counts toward the cell's verdict."""
    NOISY = "noisy"
    """A request failed in the baseline, before the trigger, in a way a steady background does not explain (a
    transport failure, or HTTP errors in a burst: see harness.background): the environment dropped it, not the
    rollout. HTTP errors at a steady rate are the workload's background and leave the run used."""
    UNRELIABLE = "unreliable"
    """The generator could not see the disruption (stalled, blind, skipped requests, client errors, missing records)."""
    FAILED = "failed"
    """The rollout itself failed (never completed or stopped progressing); nothing was measured."""


class Phase(StrEnum):
    """Where a request falls in a run, by its actual start (see harness.results)."""

    BASELINE = "baseline"
    DISRUPTION = "disruption"
    TAIL = "tail"


WINDOW_PHASES = (Phase.DISRUPTION, Phase.TAIL)
"""The phases whose failures are the rollout's loss."""


class Source(StrEnum):
    """Who reported an Event."""

    POD = "pod"
    ENDPOINT = "endpoint"
    HARNESS = "harness"
    """A mark the harness set: trigger, complete, settled, evicted, ..."""


class PodState(StrEnum):
    """One word per pod for the timeline."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    """Running, not ready."""
    READY = "ready"
    TERMINATING = "terminating"
    DELETED = "deleted"


class EndpointState(StrEnum):
    """A pod's entry in the Service's EndpointSlices."""

    READY = "ready"
    SERVING_TERMINATING = "serving-terminating"
    NOT_READY = "not-ready"
    REMOVED = "removed"


@dataclass(frozen=True)
class Event:
    t: float
    """Seconds: monotonic when collected; after the load's t0 once stored in a RunResult."""
    source: Source
    name: str
    """Pod name for pod/endpoint events; the mark's kind for harness events."""
    state: str
    """A PodState for pods, an EndpointState for endpoints, free text for harness marks."""


@dataclass(frozen=True)
class CellSpec:
    variant: str
    trigger: Trigger
    mode: ConnMode
    trial: int = 1

    @property
    def name(self) -> str:
        return f"{self.variant}__{self.trigger.value}__{self.mode.value}__t{self.trial}"
