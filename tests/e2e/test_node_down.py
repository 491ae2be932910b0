"""node-down, known answer: a worker that stops answering (its container frozen) black-holes the requests the
Service still sends to its pods (while it is frozen: timeouts only) until the node controller calls it NotReady and
their endpoints go, even for
fast-failover (best-practice + tolerationSeconds 10), which replaces them on the other worker. The node comes back
Ready and the cluster is whole afterwards (no frozen container, every node Ready and schedulable)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from harness import cluster
from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def test_node_down_loses_requests_until_the_endpoints_go(target: Target) -> None:
    r = await run_cell(target, CellSpec("fast-failover", Trigger.NODE_DOWN, ConnMode.NEW), RunOptions.of(rate=150, baseline=2.0, tail=3.0))
    r.write(Path("results/e2e") / f"{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    marks = {e.state.split(" ", 1)[-1]: e.t for e in r.events if e.source == "harness" and e.name == "node"}
    assert {"NotReady", "Ready again"} <= set(marks) and any("replaced" in k for k in marks), (why, marks)
    assert r.status is not Status.FAILED and r.lost > 0, why
    assert r.summary is not None and r.window is not None, why
    frozen = [s for s in r.summary.timeline if r.window.trigger_s <= s["t"] < marks["NotReady"] - 1]
    kinds = {k for s in frozen for k in s if k not in ("t", "ok")}
    assert kinds and kinds <= {"connect_timeout", "read_timeout"}, f"{why}: while frozen its pods answer and refuse nothing"
    paused = subprocess.run(["docker", "ps", "-q", "--filter", "status=paused"], capture_output=True, text=True).stdout
    assert not paused.strip()
    nodes = await asyncio.to_thread(target.kube.core.list_node)
    assert all(target.kube.node_ready(n.metadata.name) and not n.spec.unschedulable for n in nodes.items)
    assert len(nodes.items) == cluster.NODES
