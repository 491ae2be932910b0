"""The harness's kind cluster: kind config, create or reuse, static pod networking, wait Ready, load images, delete.

Host prerequisites (Docker, the kind/kubectl binaries, the node and probe images) come from harness.provision;
everything here shells out to kind, kubectl and docker; nothing imports the Kubernetes client.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from harness import netguard, provision
from harness.errors import ClusterError
from harness.resources import cache_dir
from harness.waiting import wait_for_sync

log = logging.getLogger("harness.cluster")

CLUSTER = "rollout-harness"
NODEPORTS = range(30080, 30090)  # mapped to 127.0.0.1 on the host
PROBE_IMAGES = ("rollout-harness/probe-app:v1", "rollout-harness/probe-app:v2")
NODES = 3  # kind_config(): one control plane, two workers


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kubeconfig: Path
    node_image: str
    nodeport_host: str = "127.0.0.1"


def kubeconfig_path(name: str = CLUSTER) -> Path:
    return cache_dir() / f"kubeconfig-{name}"


class ProxyMode(StrEnum):
    """kube-proxy's mode, fixed when the cluster is created."""

    IPTABLES = "iptables"
    NFTABLES = "nftables"
    IPVS = "ipvs"


def check_proxy_mode(mode: ProxyMode) -> None:
    """Refuse a mode this host cannot run before anything is created."""
    if mode is ProxyMode.IPVS and not Path("/proc/net/ip_vs").exists():
        raise ClusterError(
            f"kube-proxy ipvs mode needs IPVS in the host kernel; this one ({platform.release()}) has none (no /proc/net/ip_vs). "
            "Use iptables or nftables"
        )


def kind_config(proxy_mode: ProxyMode = ProxyMode.IPTABLES) -> str:
    ports = "\n".join(f"  - {{containerPort: {p}, hostPort: {p}, listenAddress: 127.0.0.1, protocol: TCP}}" for p in NODEPORTS)
    return f"""kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: {proxy_mode.value}
  disableDefaultCNI: true
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


def cluster_exists(name: str = CLUSTER) -> bool:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "-q"], capture_output=True, text=True)
    return bool(out.stdout.strip())


RESTART_GRACE_S = 60
"""A node container started more than this after it was created has been restarted (kind starts it at once)."""


def _not_reusable(name: str) -> str | None:
    """Why the existing cluster cannot be reused, or None. A cluster whose node containers were restarted (docker
    or the machine restarted) is recreated rather than trusted: kind does not promise that a restarted cluster
    comes back, its API server needs minutes, and the nodes lost the pod routes and packet rules set at `up`."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}"], capture_output=True, text=True
    ).stdout.split()
    fmt = "{{.Name}} {{.State.Running}} {{.Created}} {{.State.StartedAt}}"
    out = subprocess.run(["docker", "inspect", "-f", fmt, *ids], capture_output=True, text=True).stdout if ids else ""
    return restart_reason([ln.split() for ln in out.splitlines() if ln.strip()])


def restart_reason(nodes: list[list[str]]) -> str | None:
    """`nodes`: one [name, running, created, started] per node container, as docker inspect prints them."""
    if len(nodes) != NODES or any(running != "true" for _, running, _, _ in nodes):
        return "exists but is not running"
    for node, _, created, started in nodes:
        late = (datetime.fromisoformat(started) - datetime.fromisoformat(created)).total_seconds()
        if late > RESTART_GRACE_S:
            return f"has restarted nodes ({node.lstrip('/')} restarted {late:.0f}s after creation, e.g. docker restarted)"
    return None


def load_images(images: tuple[str, ...], name: str = CLUSTER) -> None:
    for image in images:
        log.info("[up] loading %s into %s", image, name)
        provision.run([provision.tool("kind"), "load", "docker-image", image, "--name", name], f"loading image {image}", timeout=600)


def _kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    what = f"kubectl {' '.join(args[:3])}"
    try:
        r = subprocess.run(
            [provision.tool("kubectl"), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{what}: no answer within {timeout:.0f}s") from None
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise ClusterError(f"{what} failed: {last}")
    return r.stdout


def _cni_conflist(pod_cidr: str) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "rollout-harness-ptp",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": False,
                    "mtu": 1500,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]},
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
    )


_NODES_JSONPATH = (
    "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=='InternalIP')].address}{'\\n'}{end}"
)


def setup_cni(name: str, kubeconfig: Path, settings: NetSettings, timeout: float = 120) -> None:
    """Static pod networking instead of kindnetd (not buildable offline): a ptp conflist per node from its
    podCIDR, a route on every node to every other node's podCIDR via that node's IP, and the catch-all routes of
    harness.netguard so that no packet for a pod or Service address leaves the node. Idempotent."""

    def addressed() -> tuple[list[list[str]] | None, str]:
        out = _kubectl(kubeconfig, "get", "nodes", "-o", _NODES_JSONPATH)
        nodes = [ln.split() for ln in out.splitlines() if ln.strip()]
        done = len(nodes) == NODES and all(len(n) == 3 for n in nodes)
        return (nodes if done else None), repr(out.strip())

    nodes = wait_for_sync(addressed, timeout=timeout, every=1, what=f"{NODES} nodes with a podCIDR and an InternalIP", error=ClusterError)
    for node, cidr, _ip in nodes:
        script = f"mkdir -p /etc/cni/net.d && printf '%s' '{_cni_conflist(cidr)}' > /etc/cni/net.d/10-rollout-harness.conflist"
        script += " && " + netguard.node_script(settings.dead_pod_ip, settings.icmp_ratelimit_off)
        for other, ocidr, oip in nodes:
            if other != node:
                script += f" && ip route replace {ocidr} via {oip}"
        r = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True)
        if r.returncode != 0:
            raise ClusterError(f"could not configure pod networking on {node}: {r.stderr.strip()}")
    log.info(
        "[up] pod networking: static ptp CNI on %d nodes; dead pod IPs: %s; ICMP rate limit per destination: %s",
        len(nodes),
        settings.dead_pod_ip.value,
        "off" if settings.icmp_ratelimit_off else "kernel default",
    )


def _wait_ready(name: str, kubeconfig: Path, timeout: float) -> None:
    def ready() -> tuple[bool | None, str]:
        try:
            out = _kubectl(kubeconfig, "get", "nodes", "--no-headers")
        except ClusterError as e:  # the API server may still be starting
            return None, str(e)
        status = [ln.split()[:2] for ln in out.splitlines() if ln.strip()]
        done = len(status) == NODES and all(s[1:] == ["Ready"] for s in status)
        return (True if done else None), ", ".join(" ".join(s) for s in status) or "no nodes"

    try:
        wait_for_sync(ready, timeout=timeout, every=2, what=f"{NODES} nodes Ready", error=ClusterError)
    except ClusterError as e:
        try:
            pods = _kubectl(kubeconfig, "-n", "kube-system", "get", "pods", "--no-headers")
            failing = ", ".join(ln.split()[0] for ln in pods.splitlines() if ln.strip() and "Running" not in ln) or "none"
        except ClusterError as pe:
            failing = f"unknown ({pe})"
        raise ClusterError(
            f"{e}; failing kube-system pods: {failing}; see `docker exec {name}-worker journalctl -u kubelet -u containerd`"
        ) from None


@dataclass(frozen=True)
class NetSettings:
    """How the cluster treats packets for dead pod IPs (see harness.netguard). Defaults, and why: `reject` makes a
    SYN sent to a pod that no longer exists visible as what it is (`no_route`, at once) instead of a timeout that
    a stalled client could also produce; ICMP limit `off` because a real Service's clients come from many
    addresses, each with its own per-destination ICMP budget, while all our load comes from one."""

    dead_pod_ip: netguard.DeadPodIP = netguard.DeadPodIP.REJECT
    icmp_ratelimit_off: bool = True
    proxy_mode: ProxyMode = ProxyMode.IPTABLES
    """iptables: the default of kube-proxy and kind. Changing it means recreating the cluster (`down`, then `up`)."""


def node_names(name: str = CLUSTER) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--format", "{{.Names}}"], capture_output=True, text=True
    )
    return sorted(out.stdout.split())


def freeze_node(node: str, frozen: bool) -> None:
    """Freeze (docker pause: every process in the node's container stops; its network stack keeps running) or thaw
    one node of the harness's cluster. Only node containers of a kind cluster are accepted."""
    labels = subprocess.run(
        ["docker", "inspect", "-f", '{{index .Config.Labels "io.x-k8s.kind.cluster"}}', node], capture_output=True, text=True
    )
    if labels.returncode != 0 or not labels.stdout.strip():
        raise ClusterError(f"{node!r} is not a kind node container")
    verb = "pause" if frozen else "unpause"
    r = subprocess.run(["docker", verb, node], capture_output=True, text=True)
    if r.returncode != 0 and not (not frozen and "is not paused" in r.stderr):
        raise ClusterError(f"docker {verb} {node}: {r.stderr.strip()}")


def thaw_nodes(name: str = CLUSTER) -> None:
    """Thaw nodes a killed node-down run left frozen; a live run holds the host's `drain` lock while its node is
    frozen (the kernel drops the lock with the process), so its node is left alone."""
    from harness import hostlock

    out = subprocess.run(
        ["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "--filter", "status=paused", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    )
    frozen = out.stdout.split()
    if not frozen or not hostlock.free("drain"):
        return
    for node in frozen:
        log.info("[up] node %s was left frozen (a node-down run was killed); thawing it", node)
        freeze_node(node, False)


def proxy_mode(kubeconfig: Path) -> str:
    """kube-proxy's configured mode, from its ConfigMap (kubeadm and kind write one; empty mode means iptables)."""
    from harness.kubeviews import proxy_mode_of

    return proxy_mode_of(
        _kubectl(kubeconfig, "-n", "kube-system", "get", "configmap", "kube-proxy", "-o", r"jsonpath={.data.config\.conf}")
    )


def settings(name: str = CLUSTER) -> dict[str, str]:
    """The network settings the running cluster actually has, read from its nodes (they must agree) and from
    kube-proxy's configuration."""
    seen = {tuple(sorted(netguard.read_node_settings(n).items())) for n in node_names(name)}
    nodes = dict(seen.pop()) if len(seen) == 1 else {"dead_pod_ip": "mixed", "icmp_ratelimit": "mixed"}
    return {"proxy_mode": proxy_mode(kubeconfig_path(name))} | nodes


def up(offline: str = "auto", name: str = CLUSTER, wait: float = 300, net: NetSettings | None = None) -> ClusterInfo:
    """Idempotent: reuse a running cluster, else create it; always (re)load the probe images. net=None keeps the
    running cluster's network settings (the defaults for a new cluster)."""
    t0 = time.monotonic()
    if net is not None:
        check_proxy_mode(net.proxy_mode)
    provision.ensure_docker()
    kubeconfig = kubeconfig_path(name)
    node_image = provision.ensure_node_image(offline)
    provision.build_probe_images()
    thaw_nodes(name)  # a run killed during node-down leaves its node frozen
    why = _not_reusable(name) if cluster_exists(name) else None
    if why:
        log.info("[up] cluster %s %s; recreating it", name, why)
        down(name)
    kind = provision.tool("kind")
    if not cluster_exists(name):
        mode = net.proxy_mode if net is not None else ProxyMode.IPTABLES
        cfg = cache_dir() / f"kind-{name}.yaml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(kind_config(mode))
        log.info("[up] creating kind cluster %s (1 control-plane + 2 workers) from %s", name, node_image)
        create = [kind, "create", "cluster", "--name", name, "--image", node_image, "--config", str(cfg)]
        try:
            provision.run([*create, "--kubeconfig", str(kubeconfig), "--wait", "0s"], "creating the kind cluster", timeout=wait + 300)
        except BaseException:
            log.info("[up] creation failed or interrupted; deleting the partial cluster")
            down(name)
            raise
    else:
        log.info("[up] reusing running cluster %s", name)
        provision.run([kind, "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)], "exporting kubeconfig")
        running = proxy_mode(kubeconfig)
        if net is not None and net.proxy_mode.value != running:
            raise ClusterError(
                f"cluster {name} runs kube-proxy in {running} mode; the mode is fixed at creation: "
                f"`rollout-harness down`, then `rollout-harness up --proxy-mode {net.proxy_mode.value}`"
            )
    net = net or current_settings(name)
    setup_cni(name, kubeconfig, net)
    netguard.set_route_error_cost(net.icmp_ratelimit_off, cache_dir() / "route-error-cost.orig")
    netguard.guard()
    _wait_ready(name, kubeconfig, wait)
    load_images(PROBE_IMAGES, name)
    start_dns(name, kubeconfig)
    log.info("[up] cluster %s ready in %.0fs; kubeconfig %s", name, time.monotonic() - t0, kubeconfig)
    return ClusterInfo(name, kubeconfig, node_image)


# kubeadm's Corefile without `forward` and `loop` (no query may leave the machine: names outside the cluster get
# SERVFAIL) and with CoreDNS's own default TTL, 5 s (kubeadm writes 30): see README, "Client-side discovery".
COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       ttl %d
    }
    prometheus :9153
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    reload
    loadbalance
}
"""
DNS_TTL = 5


def start_dns(name: str, kubeconfig: Path) -> None:
    """CoreDNS (built offline, not in the node image) with COREFILE, one replica on the control-plane node, where
    no trigger drains or freezes it."""
    image = provision.build_coredns_image()
    load_images((image,), name)
    corefile = {"data": {"Corefile": COREFILE % DNS_TTL}}
    _kubectl(kubeconfig, "-n", "kube-system", "patch", "configmap", "coredns", "--type", "merge", "-p", json.dumps(corefile))
    spec = {"replicas": 1, "template": {"spec": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}}}
    _kubectl(kubeconfig, "-n", "kube-system", "patch", "deployment", "coredns", "--type", "merge", "-p", json.dumps({"spec": spec}))
    log.info("[up] waiting for CoreDNS (%s)", image)
    _kubectl(kubeconfig, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout", "180s", timeout=200)


def current_settings(name: str = CLUSTER) -> NetSettings:
    """The running cluster's network settings as NetSettings (the defaults when there is none)."""
    try:
        now = settings(name)
    except ClusterError:
        return NetSettings()
    mode = ProxyMode(now["proxy_mode"]) if now["proxy_mode"] in {m.value for m in ProxyMode} else ProxyMode.IPTABLES
    if now["dead_pod_ip"] not in (m.value for m in netguard.DeadPodIP):
        return NetSettings(proxy_mode=mode)
    off = now["icmp_ratelimit"] == "off" or now["icmp_ratelimit"].startswith("node 0ms")  # the host part may have been reset
    return NetSettings(netguard.DeadPodIP(now["dead_pod_ip"]), off, mode)


def down(name: str = CLUSTER) -> None:
    if not provision.docker_answers():
        log.info("[down] docker is not running; nothing to delete")
        return
    if not cluster_exists(name):
        log.info("[down] no cluster %s", name)
        return
    log.info("[down] deleting cluster %s", name)
    netguard.set_route_error_cost(False, cache_dir() / "route-error-cost.orig")
    cmd = [provision.tool("kind"), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig_path(name))]
    provision.run(cmd, "deleting the cluster", timeout=300)
