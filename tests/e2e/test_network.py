"""The cluster's network is contained and dead pod IPs behave as configured (issue 9), on the real cluster:
during a naive × set-image run no packet toward a pod or Service address leaves the host through its uplink,
and with `--dead-pod-ip reject` (the default) SYNs sent to pods that just died come back as `no_route`."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Iterator

import pytest

from harness import cluster, netguard
from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, rollout_timeout=180)
COUNT = "rollout-harness-egress-count"


def _uplink() -> str:
    out = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True, check=True).stdout.split()
    return out[out.index("dev") + 1]


@contextlib.contextmanager
def egress_counter() -> Iterator[Callable[[], int]]:
    """Counting rules (no target) in mangle POSTROUTING for packets that actually leave through the uplink toward
    the pod or Service CIDR; yields a reader of their packet count; removes them afterwards."""
    rules = [["-o", _uplink(), "-d", d, "-m", "comment", "--comment", COUNT] for d in (netguard.POD_CIDR, netguard.SERVICE_CIDR)]
    for r in rules:
        subprocess.run(["iptables", "-t", "mangle", "-I", "POSTROUTING", *r], check=True)

    def left() -> int:
        out = subprocess.run(["iptables", "-t", "mangle", "-L", "POSTROUTING", "-v", "-n", "-x"], capture_output=True, text=True).stdout
        return sum(int(ln.split()[0]) for ln in out.splitlines() if COUNT in ln)

    try:
        yield left
    finally:
        for r in rules:
            subprocess.run(["iptables", "-t", "mangle", "-D", "POSTROUTING", *r], check=False)


async def test_naive_rollout_sends_nothing_off_host_and_dead_pods_give_no_route(target: Target) -> None:
    assert target.settings["dead_pod_ip"] == "reject" and target.settings["icmp_ratelimit"] == "off", target.settings
    drops_before = await asyncio.to_thread(netguard.guard_drops)
    with egress_counter() as left:
        r = await run_cell(target, CellSpec("naive", Trigger.SET_IMAGE, ConnMode.NEW), OPTS)
        assert left() == 0, "packets toward pod or Service addresses left the host through its uplink"
    drops_after = await asyncio.to_thread(netguard.guard_drops)
    assert r.status in (Status.USED, Status.NOISY), (r.status, r.reasons)
    assert r.lost_by_kind.get("no_route", 0) > 0, f"SYNs to dead pod IPs must come back as no_route: {r.lost_by_kind}"
    assert drops_after == drops_before, "the nodes' catch-all routes must stop such packets before the host-side guard"
    assert cluster.settings() == {"proxy_mode": "iptables", "dead_pod_ip": "reject", "icmp_ratelimit": "off", "userland_proxy": "off"}
