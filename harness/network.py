"""The cluster's network as `up` sets it: kube-proxy's mode (fixed when the cluster is created), pod networking
(static, or kindnetd on the stock node image: harness.provision.NodeImage), what the nodes do with packets for dead
pod IPs (harness.netguard), and CoreDNS. NetSettings chooses them; node_settings and NetSettings.read_back read them
from a running cluster.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness import netguard, provision, resources, sh
from harness.errors import ClusterError
from harness.waiting import wait_for_sync

log = logging.getLogger("harness.network")


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

    @classmethod
    def read_back(cls, now: dict[str, str]) -> NetSettings:
        """The settings a running cluster has, from what was read of it ({proxy_mode, dead_pod_ip, icmp_ratelimit});
        a value none of ours (a mixed or unguarded cluster) gives way to the default."""
        mode = ProxyMode(now["proxy_mode"]) if now["proxy_mode"] in {m.value for m in ProxyMode} else ProxyMode.IPTABLES
        if now["dead_pod_ip"] not in (m.value for m in netguard.DeadPodIP):
            return cls(proxy_mode=mode)
        off = now["icmp_ratelimit"] == "off" or now["icmp_ratelimit"].startswith("node 0ms")  # the host part may have been reset
        return cls(netguard.DeadPodIP(now["dead_pod_ip"]), off, mode)


def node_settings(nodes: list[str]) -> dict[str, str]:
    """What the nodes do with dead pod IPs, read from each of them: {dead_pod_ip, icmp_ratelimit}, `mixed` when
    they do not agree."""
    seen = {tuple(sorted(netguard.read_node_settings(n).items())) for n in nodes}
    return dict(seen.pop()) if len(seen) == 1 else {"dead_pod_ip": "mixed", "icmp_ratelimit": "mixed"}


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


def setup_cni(kubeconfig: Path, settings: NetSettings, count: int, static: bool = True, timeout: float = 120) -> None:
    """Pod networking and the dead-pod-IP guard, once all `count` nodes have a podCIDR. static (the offline node
    image, which has no kindnetd): a ptp conflist per node from its podCIDR and a route on every node to every other
    node's podCIDR via that node's IP; else kindnetd (the stock node image's) does both. Either way the catch-all
    routes and ICMP setting of harness.netguard, so that no packet for a pod or Service address leaves the node
    (kindnetd's per-node routes are more specific than them, as the static ones are). Idempotent."""

    def addressed() -> tuple[list[list[str]] | None, str]:
        out = provision.kubectl(kubeconfig, "get", "nodes", "-o", _NODES_JSONPATH)
        nodes = [ln.split() for ln in out.splitlines() if ln.strip()]
        done = len(nodes) == count and all(len(n) == 3 for n in nodes)
        return (nodes if done else None), repr(out.strip())

    nodes = wait_for_sync(addressed, timeout=timeout, every=1, what=f"{count} nodes with a podCIDR and an InternalIP", error=ClusterError)
    for node, _cidr, _ip in nodes:
        script = node_setup(node, nodes, settings, static)
        sh.run(["docker", "exec", node, "sh", "-c", script], timeout=60, what=f"configure pod networking on {node}")
    log.info(
        "[up] pod networking: %s on %d nodes; dead pod IPs: %s; ICMP rate limit per destination: %s",
        "static ptp CNI" if static else "kindnetd",
        len(nodes),
        settings.dead_pod_ip.value,
        "off" if settings.icmp_ratelimit_off else "kernel default",
    )


def node_setup(node: str, nodes: list[list[str]], settings: NetSettings, static: bool) -> str:
    """The shell setup_cni runs in `node`; `nodes`: [name, podCIDR, InternalIP] of every node."""
    script = netguard.node_script(settings.dead_pod_ip, settings.icmp_ratelimit_off)
    if not static:
        return script
    (cidr,) = (c for n, c, _ in nodes if n == node)
    conf = f"mkdir -p /etc/cni/net.d && printf '%s' '{_cni_conflist(cidr)}' > /etc/cni/net.d/10-rollout-harness.conflist"
    return " && ".join([conf, script, *(f"ip route replace {c} via {ip}" for n, c, ip in nodes if n != node)])


# kubeadm's Corefile without `forward` and `loop` (no query may leave the machine: names outside the cluster get
# SERVFAIL) and with CoreDNS's own default TTL, 5 s (kubeadm writes 30): see docs/findings.md, "Client-side discovery".
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


def start_metrics_server(kubeconfig: Path) -> None:
    """metrics-server (its image loaded into the nodes; manifests/addons/metrics-server.yaml), the source of the
    pods' CPU an HPA scales on. Not waited for: an HPA reads its first metrics a minute later (hpa-scale-in waits
    for them before its window)."""
    provision.kubectl(kubeconfig, "apply", "-f", str(resources.manifests_dir() / "addons" / "metrics-server.yaml"), timeout=120)
    log.info("[up] metrics-server applied")


def start_ingress(kubeconfig: Path) -> None:
    """The Traefik ingress controller (its image loaded into the nodes; manifests/addons/traefik.yaml) on the
    control-plane node, behind NodePort cluster.INGRESS_NODEPORT; waited for until it answers its readiness probe."""
    provision.kubectl(kubeconfig, "apply", "-f", str(resources.manifests_dir() / "addons" / "traefik.yaml"), timeout=120)
    log.info("[up] waiting for the Traefik ingress controller")
    ns, deploy = "rollout-harness-ingress", "deployment/traefik"
    provision.kubectl(kubeconfig, "-n", ns, "rollout", "status", deploy, "--timeout", "180s", timeout=200)


def start_dns(kubeconfig: Path, image: str | None = None) -> None:
    """CoreDNS (`image`, loaded into the nodes; None: the node image's own) with COREFILE, one replica on the
    control-plane node, where no trigger drains or freezes it: the same DNS on both node images."""
    corefile = {"data": {"Corefile": COREFILE % DNS_TTL}}
    provision.kubectl(kubeconfig, "-n", "kube-system", "patch", "configmap", "coredns", "--type", "merge", "-p", json.dumps(corefile))
    spec = {"replicas": 1, "template": {"spec": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}}}
    provision.kubectl(
        kubeconfig, "-n", "kube-system", "patch", "deployment", "coredns", "--type", "merge", "-p", json.dumps({"spec": spec})
    )
    log.info("[up] waiting for CoreDNS (%s)", image or "the node image's own")
    provision.kubectl(kubeconfig, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout", "180s", timeout=200)
