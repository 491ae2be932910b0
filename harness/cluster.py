"""The harness's kind cluster: its shape (the kind config), create or reuse, wait Ready, mark it as the harness's own
(harness.marker), load images (probe app, CoreDNS), delete; and the network settings it runs with, read back.

Host prerequisites (Docker, the kind/kubectl binaries, the node and probe images) come from harness.provision, the
network set-up from harness.network, the node containers from harness.nodes. Commands run through harness.sh.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from harness import hostlock, marker, netguard, network, nodes, provision, sh
from harness.errors import ClusterError, RolloutError
from harness.kubeviews import proxy_mode_of
from harness.network import NetSettings, ProxyMode
from harness.nodes import freeze_node as freeze_node  # the node-down trigger reaches it as cluster.freeze_node
from harness.resources import cache_dir
from harness.waiting import wait_for_sync

if TYPE_CHECKING:
    from harness.kube import Kube

log = logging.getLogger("harness.cluster")

CLUSTER = "rollout-harness"
NODEPORTS = range(30080, 30090)  # mapped to 127.0.0.1 on the host
INGRESS_NODEPORT = 30089
"""Reserved for the ingress controller (manifests/addons/traefik.yaml); workloads get the others (WORKLOAD_NODEPORTS)."""
WORKLOAD_NODEPORTS = range(NODEPORTS.start, INGRESS_NODEPORT)
PROBE_IMAGES = ("rollout-harness/probe-app:v1", "rollout-harness/probe-app:v2")
NODES = 3  # kind_config(): one control plane, two workers


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kubeconfig: Path
    node_image: str


def kubeconfig_path(name: str = CLUSTER) -> Path:
    return cache_dir() / f"kubeconfig-{name}"


def kind_config(proxy_mode: ProxyMode = ProxyMode.IPTABLES, kind_cni: bool = False) -> str:
    """The cluster's shape. kind_cni: keep kind's default CNI (kindnetd, in the stock node image); without it the
    nodes get static ptp networking (harness.network.setup_cni). The pod and Service CIDRs are explicit either way:
    harness.netguard routes them."""
    ports = "\n".join(f"  - {{containerPort: {p}, hostPort: {p}, listenAddress: 127.0.0.1, protocol: TCP}}" for p in NODEPORTS)
    cni = "" if kind_cni else "\n  disableDefaultCNI: true"
    return f"""kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: {proxy_mode.value}{cni}
  podSubnet: {netguard.POD_CIDR}
  serviceSubnet: {netguard.SERVICE_CIDR}
nodes:
- role: control-plane
  labels: {{rollout-harness/role: ingress}}
  extraPortMappings:
{ports}
- role: worker
- role: worker
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  failCgroupV1: false
"""


def kind_config_path(name: str = CLUSTER) -> Path:
    """The kind config `up` wrote when it created cluster `name` (`down` removes it)."""
    return cache_dir() / f"kind-{name}.yaml"


def cluster_exists(name: str = CLUSTER) -> bool:
    """False too when docker does not answer (the pytest plugin asks before `up` starts it)."""
    return bool(nodes.containers(name, stopped=True, check=False))


def harness_clusters() -> list[str]:
    """The kind clusters on this docker that `up` with this cache made or marked (its kind config or marker record is
    here): they share the host-side guard, the host's sysctl and the kind network, which `down` of the last one puts
    back. None when docker does not answer."""
    out = sh.run(["docker", "ps", "-a", "--format", f'{{{{.Label "{nodes.KIND_LABEL}"}}}}', "--filter", f"label={nodes.KIND_LABEL}"],
                 timeout=nodes.DOCKER_TIMEOUT, check=False)  # fmt: skip
    names = sorted(set(out.split()))
    return [n for n in names if kind_config_path(n).exists() or marker.record_path(n).exists()]


def node_names(name: str = CLUSTER) -> list[str]:
    return nodes.containers(name)


RESTART_GRACE_S = 60
"""A node container started more than this after it was created has been restarted (kind starts it at once)."""


FINISHED = "/kind/rollout-harness-up-finished"
"""Written into the control-plane container when `up` has set the cluster up to its end."""


def _not_reusable(name: str, image: str) -> str | None:
    """Why the existing cluster cannot be reused, or None. A cluster whose node containers were restarted (docker
    or the machine restarted) is recreated rather than trusted: kind does not promise that a restarted cluster
    comes back, its API server needs minutes, and the nodes lost the pod routes and packet rules set at `up`. One
    made from another node image than `image` took the other path (provision.NodeImage): recreated too. So is one
    that no `up` set up to its end (one killed during `kind create` leaves a cluster that may never answer)."""
    names = nodes.containers(name, stopped=True)
    fmt = "{{.Name}} {{.State.Running}} {{.Created}} {{.State.StartedAt}} {{.Config.Image}}"
    out = sh.run(["docker", "inspect", "-f", fmt, *names], timeout=nodes.DOCKER_TIMEOUT, check=False) if names else ""
    rows = [ln.split() for ln in out.splitlines() if ln.strip()]
    why = restart_reason([r[:4] for r in rows]) or image_reason([r[4] for r in rows if len(r) > 4], image)
    finished = ["docker", "exec", f"{name}-control-plane", "test", "-f", FINISHED]
    return why or (None if sh.ok(finished, timeout=nodes.DOCKER_TIMEOUT) else "was not set up to its end by `up` (one was killed?)")


def image_reason(images: list[str], want: str) -> str | None:
    """`images`: the node containers' images. Why a cluster of them is not one `up` would make from `want`, or None."""
    other = sorted(set(images) - {want})
    return f"runs node image {other[0]}, not {want}" if other else None


def restart_reason(containers: list[list[str]]) -> str | None:
    """`containers`: one [name, running, created, started] per node container, as docker inspect prints them."""
    if len(containers) != NODES or any(running != "true" for _, running, _, _ in containers):
        return "exists but is not running"
    for node, _, created, started in containers:
        late = (datetime.fromisoformat(started) - datetime.fromisoformat(created)).total_seconds()
        if late > RESTART_GRACE_S:
            return f"has restarted nodes ({node.lstrip('/')} restarted {late:.0f}s after creation, e.g. docker restarted)"
    return None


CRICTL = "/usr/local/bin/crictl"


def _crictl_on_nodes(name: str) -> None:
    """crictl (ci/build-crictl.sh, when built) onto the nodes of the harness's cluster that lack it: a node image built
    before it was (a cold CI run leaves it to a background build) has none, and without it kind loads every image
    again (~7 s each) instead of skipping those a node has."""
    binary = provision.build_dir() / "bin" / "crictl"
    if not binary.exists():
        return
    for node in node_names(name):
        if not sh.ok(["docker", "exec", node, "test", "-x", CRICTL], timeout=nodes.DOCKER_TIMEOUT):
            sh.run(["docker", "cp", str(binary), f"{node}:{CRICTL}"], timeout=nodes.DOCKER_TIMEOUT, what=f"copying crictl onto {node}")


# The control-plane node container's CPU weight (docker's default, the workers' weight, is 1024). The client pod runs
# there, and its generator has no real-time priority: with the host's two cores contended (the workers' pods
# starting and stopping in a rollout, the API server and etcd beside it), its longest gap during a rollout was
# 47-183 ms at 1024 and 10-124 ms at 4096 (docs/tests.md, "The client pod's gaps"). A weight orders CPU only when it
# is contended, and only between the harness's own node containers: nothing of the host's is re-weighted.
CONTROL_PLANE_CPU_SHARES = 4096


def _weigh_control_plane(name: str) -> None:
    """The control-plane node container at CONTROL_PLANE_CPU_SHARES (docker keeps it across restarts; set again on
    every `up`, so a cluster created before it gets it too). A Docker that cannot weigh containers (rootless, no cpu
    controller) is said in one line and the cluster works without it: the client pod's gaps may be longer there."""
    node = f"{name}-control-plane"
    if not sh.ok(["docker", "update", "--cpu-shares", str(CONTROL_PLANE_CPU_SHARES), node], timeout=nodes.DOCKER_TIMEOUT):
        log.warning("[up] could not set %s's CPU weight (docker update --cpu-shares); a client pod there may stall longer", node)


def load_images(images: tuple[str, ...], name: str = CLUSTER) -> None:
    for image in images:
        log.info("[up] loading %s into %s", image, name)
        sh.run([provision.tool("kind"), "load", "docker-image", image, "--name", name], timeout=600, what=f"loading image {image}")


def _wait_ready(name: str, kubeconfig: Path, timeout: float) -> None:
    def ready() -> tuple[bool | None, str]:
        try:
            out = provision.kubectl(kubeconfig, "get", "nodes", "--no-headers")
        except ClusterError as e:  # the API server may still be starting
            return None, str(e)
        status = [ln.split()[:2] for ln in out.splitlines() if ln.strip()]
        # `Ready,SchedulingDisabled`: cordoned, say by a killed drain that this `up` is about to repair
        done = len(status) == NODES and all(len(s) == 2 and s[1].split(",")[0] == "Ready" for s in status)
        return (True if done else None), ", ".join(" ".join(s) for s in status) or "no nodes"

    try:
        wait_for_sync(ready, timeout=timeout, every=2, what=f"{NODES} nodes Ready", error=ClusterError)
    except ClusterError as e:
        try:
            pods = provision.kubectl(kubeconfig, "-n", "kube-system", "get", "pods", "--no-headers")
            failing = ", ".join(ln.split()[0] for ln in pods.splitlines() if ln.strip() and "Running" not in ln) or "none"
        except ClusterError as pe:
            failing = f"unknown ({pe})"
        raise ClusterError(
            f"{e}; failing kube-system pods: {failing}; see `docker exec {name}-worker journalctl -u kubelet -u containerd`"
        ) from None


@contextlib.contextmanager
def _client(kubeconfig: Path) -> Iterator[Kube]:
    """A client of the harness's cluster; a failed call is a ClusterError (the cluster is not usable)."""
    from harness.kube import Kube  # loaded on first use: `down` never needs the client

    kube = Kube(kubeconfig)
    try:
        yield kube
    except RolloutError as e:
        raise ClusterError(str(e)) from e
    finally:
        kube.close()


def _proxy_mode(kubeconfig: Path) -> str:
    """kube-proxy's configured mode on the harness's cluster; ClusterError when it cannot be read."""
    with _client(kubeconfig) as kube:
        return proxy_mode_of(kube.proxy_config(timeout=60))


def settings(name: str = CLUSTER) -> dict[str, str]:
    """The network settings the running cluster actually has, read from its nodes (they must agree) and from
    kube-proxy's configuration."""
    host = {"userland_proxy": provision.docker_userland_proxy()}
    return {"proxy_mode": _proxy_mode(kubeconfig_path(name))} | network.node_settings(node_names(name)) | host


def current_settings(name: str = CLUSTER) -> NetSettings:
    """The running cluster's network settings as NetSettings (the defaults when there is none)."""
    try:
        return NetSettings.read_back(settings(name))
    except ClusterError:
        return NetSettings()


@contextlib.contextmanager
def _locked(name: str, verb: str) -> Iterator[None]:
    """The cluster's host-wide lock, held by `up` and `down` alike: two `up`s never delete each other's cluster (a
    failed one deletes what it created), a `down` waits for an `up`. Host-wide (hostlock.system_dir), as the
    cluster's name is: not per HOME or RH_CACHE. A cancelled run stops waiting for it (sh.Cancelled)."""
    with hostlock.system_held(
        f"cluster-{name}",
        lambda: log.info("[%s] another harness process is bringing cluster %s up or down; waiting for it", verb, name),
        sh.raise_if_cancelled,
    ):
        yield


def up(offline: str = "auto", name: str = CLUSTER, wait: float = 300, net: NetSettings | None = None) -> ClusterInfo:
    """Idempotent: reuse a running cluster, else create it; always (re)load the probe images. net=None keeps the
    running cluster's network settings (the defaults for a new cluster). Holds the cluster's lock; cancellable
    (sh.cancellable): a cancelled run's long command (a build, `kind create`) is stopped, sh.Cancelled raised, a
    partial cluster deleted."""
    with sh.cancellable(), _locked(name, "up"):
        return _up(offline, name, wait, net)


def _up(offline: str, name: str, wait: float, net: NetSettings | None) -> ClusterInfo:
    t0 = time.monotonic()
    if net is not None:
        network.check_proxy_mode(net.proxy_mode)
    provision.ensure_docker()
    kubeconfig = kubeconfig_path(name)
    node = provision.node_image(offline)
    log.info("[up] %s", node.describe())
    node = provision.provide(node)
    provision.build_probe_images(node)
    nodes.thaw_nodes(name)  # a run killed during node-down leaves its node frozen (and NotReady)
    why = _not_reusable(name, node.image) if cluster_exists(name) else None
    if why:
        log.info("[up] cluster %s %s; recreating it", name, why)
        _down(name)
    kind = provision.tool("kind")
    if not cluster_exists(name):
        netguard.record_kind_network(host_record())
        mode = net.proxy_mode if net is not None else ProxyMode.IPTABLES
        cfg = kind_config_path(name)
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(kind_config(mode, node.kind_cni))
        log.info("[up] creating kind cluster %s (1 control-plane + 2 workers) from %s", name, node.image)
        create = [kind, "create", "cluster", "--name", name, "--image", node.image, "--config", str(cfg)]
        try:
            sh.run([*create, "--kubeconfig", str(kubeconfig), "--wait", "0s"], timeout=wait + 300, what="creating the kind cluster")
        except BaseException:
            log.info("[up] creation failed or interrupted; deleting the partial cluster")
            with sh.shielded():  # clean-up: runs to its end, cancelled or not
                _down(name)
            raise
    else:
        log.info("[up] reusing running cluster %s", name)
        sh.run([kind, "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)], timeout=120, what="exporting kubeconfig")
        running = _proxy_mode(kubeconfig)
        if net is not None and net.proxy_mode.value != running:
            raise ClusterError(
                f"cluster {name} runs kube-proxy in {running} mode; the mode is fixed at creation: "
                f"`rollout-harness down`, then `rollout-harness up --proxy-mode {net.proxy_mode.value}`"
            )
    _weigh_control_plane(name)
    net = net or current_settings(name)
    network.setup_cni(kubeconfig, net, NODES, static=not node.kind_cni)
    netguard.set_route_error_cost(net.icmp_ratelimit_off, host_record())
    netguard.guard(host_record())
    _wait_ready(name, kubeconfig, wait)
    from harness import leftovers  # with the client: `down` never needs it

    with _client(kubeconfig) as kube:
        marker.mark(kube, name)  # the kind cluster `name` in the local docker: see harness.marker
        leftovers.repair(kube, own=True)
    _crictl_on_nodes(name)
    load_images(PROBE_IMAGES, name)
    dns_image = None
    if not node.own_dns:
        dns_image = provision.build_coredns_image()
        load_images((dns_image,), name)
    network.start_dns(kubeconfig, dns_image)
    if not node.own_dns:  # the offline path builds its add-ons; the stock path has no metrics-server yet
        metrics = provision.build_metrics_server_image()
        load_images((metrics,), name)
        network.start_metrics_server(kubeconfig)
    else:
        log.info("[up] stock node image: no metrics-server (hpa-scale-in needs one; the offline path builds it)")
    sh.run(["docker", "exec", f"{name}-control-plane", "touch", FINISHED], timeout=nodes.DOCKER_TIMEOUT, what="mark the cluster set up")
    log.info("[up] cluster %s ready in %.0fs; kubeconfig %s", name, time.monotonic() - t0, kubeconfig)
    return ClusterInfo(name, kubeconfig, node.image)


def ensure_ingress(name: str = CLUSTER) -> None:
    """The Traefik ingress controller in the harness's kind cluster `name` (`--via ingress`), installed on its first
    use: built from the Go module proxy (cached; minutes when cold), loaded into the nodes, applied (as the manifest
    now says) and waited for; once per process."""
    if name in _ingress_ready:
        return
    with sh.cancellable(), _locked(name, "ingress"):
        image = provision.build_traefik_image()
        kubeconfig = kubeconfig_path(name)
        running = provision.kubectl(
            kubeconfig,
            *("-n", "rollout-harness-ingress", "get", "deployment", "traefik", "--ignore-not-found"),
            *("-o", "jsonpath={.spec.template.spec.containers[0].image} {.status.readyReplicas}"),
        )
        if running.split() != [image, "1"]:
            load_images((image,), name)
        network.start_ingress(kubeconfig)
    _ingress_ready.add(name)


_ingress_ready: set[str] = set()


def host_record() -> Path:
    """What `up` changed on this host (sysctl, iptables chain and hook), for `down` to put back."""
    return cache_dir() / "host-changes.json"


def down(name: str = CLUSTER) -> None:
    """Delete the cluster, and put the host back as `up` found it (first: also after a reboot or a killed `up`).
    Waits for an `up` of the same cluster (its lock); not cancellable: clean-up completes."""
    with _locked(name, "down"):
        _down(name)


def _down(name: str) -> None:
    others = [c for c in harness_clusters() if c != name]
    if others:
        log.info("[down] the host-side guard and settings stay: harness cluster(s) %s still use them", ", ".join(others))
    else:
        netguard.set_route_error_cost(False, host_record())
        if removed := netguard.unguard(host_record()):
            log.info("[down] removed the %d host-side guard rules", removed)
    if not provision.docker_answers():
        log.info("[down] docker is not running; nothing to delete")
        return
    if cluster_exists(name):
        log.info("[down] deleting cluster %s", name)
        cmd = [provision.tool("kind"), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig_path(name))]
        sh.run(cmd, timeout=300, what="deleting the cluster")
    else:
        log.info("[down] no cluster %s", name)
    marker.forget(name)
    kind_config_path(name).unlink(missing_ok=True)
    if not others and netguard.remove_kind_network(host_record()):
        log.info("[down] removed the docker network %s, which `up` created", netguard.KIND_NETWORK)
