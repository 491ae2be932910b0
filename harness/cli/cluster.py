"""`up` and `down`: the harness's kind cluster (harness.cluster), brought up with the network settings asked for, or
deleted."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

from harness import cluster, network
from harness.cli.verb import Verb
from harness.netguard import DeadPodIP


def add_up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument(
        "--offline",
        choices=["auto", "yes", "no"],
        default="auto",
        help="yes: build the node image, Kubernetes and CoreDNS here (Go, debootstrap); no: pull kind's node image and the "
        "python base by digest (a registry must answer); auto: the offline build if it is here or no registry answers, "
        "else the pull (default: auto; one log line says which and why)",
    )
    up.add_argument(
        "--dead-pod-ip",
        choices=[d.value for d in DeadPodIP],
        default=None,
        help="what a SYN to a deleted pod's IP meets: reject = ICMP host unreachable (no_route), drop = silence (connect_timeout) "
        "(default: keep the running cluster's setting; reject for a new one)",
    )
    up.add_argument(
        "--proxy-mode",
        choices=[m.value for m in network.ProxyMode],
        default=None,
        help="kube-proxy mode, fixed at creation (default: the running cluster's; iptables for a new one; ipvs needs kernel IPVS)",
    )
    up.add_argument(
        "--icmp-ratelimit",
        choices=["off", "kernel"],
        default=None,
        help="per-destination ICMP error rate limit on the nodes: off = as many clients would see it, kernel = 1/s (default: keep; off)",
    )


@dataclass(frozen=True)
class NetChanges:
    """The network settings asked for; None: keep the running cluster's (a new one's default)."""

    dead_pod_ip: DeadPodIP | None = None
    icmp_ratelimit_off: bool | None = None
    proxy_mode: network.ProxyMode | None = None

    def over(self, cur: network.NetSettings) -> network.NetSettings:
        return network.NetSettings(
            cur.dead_pod_ip if self.dead_pod_ip is None else self.dead_pod_ip,
            cur.icmp_ratelimit_off if self.icmp_ratelimit_off is None else self.icmp_ratelimit_off,
            cur.proxy_mode if self.proxy_mode is None else self.proxy_mode,
        )


async def up(args: argparse.Namespace) -> int:
    changes = NetChanges(
        None if args.dead_pod_ip is None else DeadPodIP(args.dead_pod_ip),
        None if args.icmp_ratelimit is None else args.icmp_ratelimit == "off",
        None if args.proxy_mode is None else network.ProxyMode(args.proxy_mode),
    )
    return await bring_up(args.offline, changes)


async def bring_up(offline: str, changes: NetChanges) -> int:
    """The cluster up (created if need be), with `changes` over the running cluster's network settings."""
    net = None
    if changes != NetChanges():
        net = changes.over(await asyncio.to_thread(cluster.current_settings))
    info = await asyncio.to_thread(cluster.up, offline, cluster.CLUSTER, 300, net)
    print(f"cluster {info.name} ready; kubeconfig {info.kubeconfig}")
    return 0


async def down(args: argparse.Namespace) -> int:
    await asyncio.to_thread(cluster.down)
    return 0


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


UP = Verb(
    "up",
    "bring up the kind cluster (idempotent; builds the node image offline if needed)",
    "Create the harness's kind cluster (one control plane, two workers), or reuse the running one, with the probe\n"
    "images loaded and the network settings asked for; a setting not given keeps the running cluster's.",
    "examples:\n  rollout-harness up\n  rollout-harness up --dead-pod-ip drop --proxy-mode nftables",
    add_up_arguments,
    up,
)

DOWN = Verb(
    "down",
    "delete the harness's kind cluster (idempotent)",
    "Delete the harness's kind cluster and put back the host's ICMP error limit that `up` lifted; nothing to do\n"
    "if there is no cluster (or no docker).",
    "example:\n  rollout-harness down",
    _no_arguments,
    down,
)
