"""What drain and node-down leave on nodes, on the real cluster: a node an admin cordoned is neither drained nor
uncordoned; a cordon or a frozen node that a killed run left behind (its record names a process that is gone) is undone
by the next connect, while a live run's cordon is left alone. Each test puts every node back as it found it."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest
from support import dead_owner

from harness import cluster, nodes, owner
from harness.actions import TriggerContext, drain, wait_rollout
from harness.deploy import deploy, namespace_name
from harness.errors import RolloutError
from harness.kube import Kube
from harness.kubeviews import CORDONED_BY, FROZEN_BY, NodeView
from harness.manifests import load_variant
from harness.target import Target, connect

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _patch(kube: Kube, node: str, body: dict[str, Any]) -> None:
    """Change a node as an admin (kubectl cordon, annotate) or a killed run would have left it."""
    kube.core.patch_node(node, body, _content_type="application/strategic-merge-patch+json")


def _restore(kube: Kube, node: str) -> None:
    """Schedulable, no record of ours."""
    _patch(kube, node, {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY: None, FROZEN_BY: None}}})


def _cordoned_by(who: str) -> dict[str, Any]:
    return {"spec": {"unschedulable": True}, "metadata": {"annotations": {CORDONED_BY: who}}}


async def _nodes(kube: Kube) -> dict[str, NodeView]:
    return {n.name: n for n in await asyncio.to_thread(kube.nodes)}


async def test_a_node_an_admin_cordoned_is_not_drained_and_stays_cordoned(target: Target) -> None:
    kube = target.kube
    ns = namespace_name("naive", "drain")
    port = target.ports.take(await asyncio.to_thread(kube.used_nodeports))
    admin = ""
    try:
        d = await deploy(kube, load_variant("naive"), ns, port, {"rollout-harness.io/test": "cordons"})
        ctx = TriggerContext(kube, ns, 120, d.workload, {}, lambda kind, detail: None)
        await wait_rollout(ctx, "deploy naive")
        pods = await asyncio.to_thread(kube.list_pods, ns, d.workload.selector)
        admin = Counter(p.node for p in pods).most_common(1)[0][0]  # the node a drain would take
        on_admin = {p.name for p in pods if p.node == admin}
        await asyncio.to_thread(_patch, kube, admin, {"spec": {"unschedulable": True}})  # kubectl cordon: no record of ours
        # the other worker is the only schedulable one left: draining it would leave its pods nowhere to go
        with pytest.raises(RolloutError, match=rf"^drain: .*schedulable worker.* \(left out: .*{re.escape(admin)} \(cordoned\)\)$"):
            await drain(ctx)
        after = await _nodes(kube)
        assert [n for n, v in after.items() if v.unschedulable] == [admin] and not after[admin].cordoned_by, after
        assert not any(v.cordoned_by for v in after.values()), after
        left = {p.name for p in await asyncio.to_thread(kube.list_pods, ns, d.workload.selector) if p.node == admin and not p.deleting}
        assert left == on_admin, "the admin's node was drained"
    finally:
        if admin:
            await asyncio.to_thread(_restore, kube, admin)
        await asyncio.to_thread(kube.delete_namespace, ns)


async def test_the_next_connect_lifts_a_dead_runs_cordon_and_leaves_a_live_ones(target: Target) -> None:
    kube = target.kube
    dead_run, live_run = sorted(n for n, v in (await _nodes(kube)).items() if not v.control_plane)[:2]
    dead = dead_owner()
    try:
        await asyncio.to_thread(_patch, kube, dead_run, _cordoned_by(dead))
        await asyncio.to_thread(_patch, kube, live_run, _cordoned_by(owner.me()))  # this process: alive
        (await connect(no_up=True)).kube.close()
        after = await _nodes(kube)
        assert not after[dead_run].unschedulable and not after[dead_run].cordoned_by, after[dead_run]
        assert after[live_run].unschedulable and after[live_run].cordoned_by == owner.me(), after[live_run]
    finally:
        for node in (dead_run, live_run):
            await asyncio.to_thread(_restore, kube, node)


async def test_the_next_connect_thaws_a_node_a_killed_node_down_left_frozen(target: Target) -> None:
    kube = target.kube
    worker = sorted(n for n, v in (await _nodes(kube)).items() if not v.control_plane)[0]
    try:  # as node-down leaves it when killed: recorded, then paused (well within the 50 s before NotReady)
        await asyncio.to_thread(_patch, kube, worker, {"metadata": {"annotations": {FROZEN_BY: dead_owner()}}})
        await asyncio.to_thread(nodes.freeze_node, worker, True)
        (await connect(no_up=True)).kube.close()
        paused = await asyncio.to_thread(nodes.containers, cluster.CLUSTER, "status=paused")
        assert worker not in paused
        assert not (await _nodes(kube))[worker].frozen_by
    finally:
        await asyncio.to_thread(nodes.freeze_node, worker, False)
        await asyncio.to_thread(_restore, kube, worker)
