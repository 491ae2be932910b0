"""Keep the cluster's traffic on this machine, and make dead pod IPs behave like a chosen kind of real CNI.

With the static ptp CNI a node has a /32 route per live local pod and a /24 per other node; a SYN that kube-proxy
DNATs to a pod that no longer exists would otherwise follow the node's default route to the host and out of its
uplink. So every node gets a catch-all route for the whole pod CIDR that never leads off-node (and the Service CIDR
is local to every node: see node_script):
  reject  `unreachable` route: the node answers ICMP host-unreachable, the client sees EHOSTUNREACH (`no_route`),
          as with CNIs that install unreachable routes for their blocks;
  drop    `blackhole` route: silence, the client sees `connect_timeout`, as on a flat network that drops.
The kernel rate-limits ICMP errors per destination twice: net.ipv4.icmp_ratelimit (per network namespace, 1 s
with a burst of 6) for REJECTs, and net.ipv4.route.error_cost/error_burst (kernel-wide, host namespace only) for
unreachable routes. All our load comes from one host address, while a real Service's clients come from many,
each with its own budget. "ICMP rate limit off" sets icmp_ratelimit=0 on the nodes and route.error_cost=0 on
the host (the previous value is saved and restored by `down`); the global icmp_msgs_per_sec limit stays. Measured
on naive × set-image with reject: 125 connect_timeout and 10 no_route with only the node setting, 0 and 60 with
both. These are cluster settings, read back into every result.

On the host, `guard()` adds DOCKER-USER rules (commented `rollout-harness`) that drop anything forwarded from the
kind network toward the pod or Service CIDR or a private range through any other interface: a second seat belt,
whose packet counters the containment test reads.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness import sh
from harness.errors import ClusterError

log = logging.getLogger("harness.netguard")

POD_CIDR = "10.244.0.0/16"  # kind's default podSubnet, set explicitly in the kind config
SERVICE_CIDR = "10.96.0.0/16"  # kind's default serviceSubnet
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
COMMENT = "rollout-harness"
KIND_NETWORK = "kind"


class DeadPodIP(StrEnum):
    REJECT = "reject"
    DROP = "drop"


def node_script(dead_pod_ip: DeadPodIP, icmp_ratelimit_off: bool) -> str:
    """Shell run inside every node container (idempotent)."""
    route = "unreachable" if dead_pod_ip is DeadPodIP.REJECT else "blackhole"
    lines = [
        f"ip route replace {route} {POD_CIDR}",
        # the Service CIDR is local (as kube-proxy's ipvs mode makes ClusterIPs): the node's own processes (the API
        # server calling metrics-server's APIService) find a route, kube-proxy's DNAT then sends them on, and a
        # ClusterIP nobody serves is refused on the node. An unreachable route failed them before any DNAT.
        f"(ip route del {SERVICE_CIDR} table main 2>/dev/null || true)",
        f"ip route replace local {SERVICE_CIDR} dev lo table local",
    ]
    lines.append(f"sysctl -qw net.ipv4.icmp_ratelimit={0 if icmp_ratelimit_off else 1000}")
    return " && ".join(lines)


ERROR_COST = "/proc/sys/net/ipv4/route/error_cost"


def recorded(record: Path) -> dict[str, Any]:
    """What `up` changed on this host and `down` puts back (a JSON file in the cache, written before each change)."""
    try:
        doc = json.loads(record.read_text())
    except (OSError, ValueError):
        doc = {}
    old = record.with_name("route-error-cost.orig")  # where earlier versions kept the sysctl's original value
    if "error_cost" not in doc and old.exists():
        doc["error_cost"] = old.read_text().strip()
    return doc if isinstance(doc, dict) else {}


def _record(record: Path, doc: dict[str, Any]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(record)
    record.with_name("route-error-cost.orig").unlink(missing_ok=True)


def set_route_error_cost(off: bool, record: Path, path: Path = Path(ERROR_COST)) -> None:
    """Kernel-wide: 0 lifts the per-destination limit on ICMP errors for unreachable routes. The value found is
    recorded before it is changed, and off=False puts exactly that back (nothing, if the harness changed nothing)."""
    current = path.read_text().strip()
    doc = recorded(record)
    if off and current != "0":
        doc.setdefault("error_cost", current)
        _record(record, doc)
        path.write_text("0")
    elif not off and "error_cost" in doc:
        path.write_text(str(doc.pop("error_cost")))
        _record(record, doc)


def read_node_settings(node: str) -> dict[str, str]:
    """What a node actually does with dead pod IPs, read back from its routing table and sysctls."""
    routes = sh.run(["docker", "exec", node, "ip", "route", "show", POD_CIDR], timeout=30, what=f"read routes on {node}")
    kind = routes.split()[0] if routes.strip() else "none"
    limit = sh.run(["docker", "exec", node, "sysctl", "-n", "net.ipv4.icmp_ratelimit"], timeout=30, what=f"read sysctls on {node}").strip()
    mode = {"unreachable": DeadPodIP.REJECT.value, "blackhole": DeadPodIP.DROP.value}.get(kind, f"unguarded ({kind})")
    host_off = Path(ERROR_COST).read_text().strip() == "0"
    return {
        "dead_pod_ip": mode,
        "icmp_ratelimit": "off" if limit == "0" and host_off else f"node {limit}ms, host route errors {'off' if host_off else 'on'}",
    }


def record_kind_network(record: Path) -> None:
    """Before kind creates a cluster: record that the kind network is about to be created (kind makes it and never
    deletes it), so that `down` of the last harness cluster removes it with its bridge's packet rules."""
    if not sh.ok(["docker", "network", "inspect", KIND_NETWORK], timeout=30):
        _record(record, recorded(record) | {"kind_network_created": True})


def remove_kind_network(record: Path) -> bool:
    """Remove the kind network if `up` created it and no container is attached to it any more; True if it went."""
    doc = recorded(record)
    if not doc.get("kind_network_created"):
        return False
    attached = sh.run(["docker", "network", "inspect", KIND_NETWORK, "-f", "{{len .Containers}}"], timeout=30, check=False).strip()
    if attached not in ("", "0"):
        return False
    if attached == "0":
        sh.run(["docker", "network", "rm", KIND_NETWORK], timeout=60, what="remove the kind network")
    doc.pop("kind_network_created")
    _record(record, doc)
    return attached == "0"


def _bridge() -> str:
    net_id = sh.run(["docker", "network", "inspect", KIND_NETWORK, "-f", "{{.Id}}"], timeout=30, what="find the kind network").strip()
    return f"br-{net_id[:12]}"


def _rules(bridge: str) -> list[list[str]]:
    targets = (POD_CIDR, SERVICE_CIDR, *PRIVATE)
    return [["-i", bridge, "!", "-o", bridge, "-d", d, "-m", "comment", "--comment", COMMENT, "-j", "DROP"] for d in targets]


def guard(record: Path) -> None:
    """Install the host-side rules (idempotent), recording first what it creates beyond them (the DOCKER-USER chain
    and its hook, which docker normally makes) so that unguard removes exactly that. Needs root and iptables."""
    if shutil.which("iptables") is None:
        raise ClusterError("iptables is not installed; the host-side guard for the kind network needs it")
    bridge = _bridge()
    doc = recorded(record)
    if not sh.ok(["iptables", "-S", "DOCKER-USER"], timeout=30):
        _record(record, doc | {"chain_created": True})
        sh.run(["iptables", "-N", "DOCKER-USER"], timeout=30, what="create the DOCKER-USER chain")
    if not sh.ok(["iptables", "-C", "FORWARD", "-j", "DOCKER-USER"], timeout=30):
        _record(record, recorded(record) | {"forward_hooked": True})
        sh.run(["iptables", "-I", "FORWARD", "-j", "DOCKER-USER"], timeout=30, what="hook DOCKER-USER into FORWARD")
    for rule in _rules(bridge):
        if not sh.ok(["iptables", "-C", "DOCKER-USER", *rule], timeout=30):
            sh.run(["iptables", "-I", "DOCKER-USER", *rule], timeout=30, what="install the host-side guard")
    log.info("[up] host guard: forwarded traffic from %s toward pod, Service and private addresses is dropped", bridge)


def ours(rules: str) -> list[list[str]]:
    """The `iptables -D` arguments that delete the harness's rules (those with its comment) from `iptables -S` output."""
    out = []
    for line in rules.splitlines():
        args = shlex.split(line)
        if len(args) > 2 and args[0] == "-A" and "--comment" in args and args[args.index("--comment") + 1] == COMMENT:
            out.append(["-D", *args[1:]])
    return out


def unguard(record: Path) -> int:
    """Remove the harness's host-side rules, and the chain and hook if the harness created them; returns how many
    rules went. Nothing else in DOCKER-USER (docker's, an admin's) is touched."""
    if shutil.which("iptables") is None:
        return 0
    rules = _listed()
    for args in rules:
        sh.run(["iptables", *args], timeout=30, what="remove the host-side guard")
    doc = recorded(record)
    if doc.pop("forward_hooked", False):
        sh.run(["iptables", "-D", "FORWARD", "-j", "DOCKER-USER"], timeout=30, check=False)
    if doc.pop("chain_created", False) and not sh.run(["iptables", "-S", "DOCKER-USER"], timeout=30, check=False).count("-A "):
        sh.run(["iptables", "-X", "DOCKER-USER"], timeout=30, check=False)
    _record(record, doc)
    return len(rules)


def _listed() -> list[list[str]]:
    """The `iptables -D` arguments of the harness's rules now in DOCKER-USER; none without iptables or the chain."""
    if shutil.which("iptables") is None:
        return []
    return ours(sh.run(["iptables", "-S", "DOCKER-USER"], timeout=30, check=False))


def installed_rules() -> list[str]:
    """The harness's rules now in DOCKER-USER, as `iptables -S` lists them."""
    return [" ".join(["-A", *args[1:]]) for args in _listed()]


def rules_per_cluster() -> int:
    """How many rules `guard` installs."""
    return len(_rules(""))


def guard_drops() -> int:
    """Packets the host-side guard has dropped so far (0 when it is not installed)."""
    out = sh.run(["iptables", "-L", "DOCKER-USER", "-v", "-n", "-x"], timeout=30, check=False)  # no chain: no output
    return sum(int(ln.split()[0]) for ln in out.splitlines() if COMMENT in ln and ln.split() and ln.split()[0].isdigit())


def flush_conntrack(nodes: list[str], port: int) -> int:
    """Delete every conntrack entry toward a NodePort on the nodes; return how many there were.

    Why: kube-proxy leaves TCP entries alone when an endpoint goes away. A SYN it sent to a pod that had just died
    leaves a `SYN_SENT [UNREPLIED]` entry (120 s) keyed by the client's address and source port; a later
    connection that reuses that source port matches it and is sent to the dead pod IP (timeout, or no_route
    with reject). Our one client address reuses source ports within seconds, so a cell would inherit the
    previous cell's dead pods. Flushing the port before each cell keeps cells independent."""
    if not nodes:
        return 0
    with ThreadPoolExecutor(len(nodes)) as pool:  # all nodes at once: each `docker exec` takes ~0.15 s
        return sum(pool.map(_flush, nodes, [port] * len(nodes)))


def _flush(node: str, port: int) -> int:
    """conntrack says how many entries it deleted on stderr, and exits 1 when there were none; a node that does not
    answer in time counts none."""
    cmd = f"conntrack -D -p tcp --orig-port-dst {port} 2>&1"
    try:
        out = sh.run(["docker", "exec", node, "sh", "-c", cmd], timeout=30, check=False)
    except ClusterError:  # timed out
        return 0
    m = re.search(r"(\d+) flow entries have been deleted", out)
    return int(m.group(1)) if m else 0
