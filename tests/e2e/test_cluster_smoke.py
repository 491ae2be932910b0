"""Smoke test on the real kind cluster: the deploy path puts a locally built image behind a NodePort that
answers 200 through 127.0.0.1, and deleting its pods makes the harness's client see connection failures."""

from __future__ import annotations

import asyncio
import copy
import dataclasses

import pytest

from harness.actions import TriggerContext, wait_rollout
from harness.deploy import deploy, namespace_name
from harness.load import LoadSpec, run_load
from harness.manifests import load_variant
from harness.model import ConnMode
from harness.records import RequestRecord
from harness.serving import wait_serving
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def test_nodeport_serves_and_pod_deletion_is_seen(target: Target) -> None:
    kube = target.kube
    naive = load_variant("naive")
    dep = copy.deepcopy(naive.deployment)
    dep["spec"]["replicas"] = 2
    variant = dataclasses.replace(naive, deployment=dep)
    ns = namespace_name("smoke", "delete")
    port = target.ports.take(await asyncio.to_thread(kube.used_nodeports))
    try:
        d = await deploy(kube, variant, ns, port, {"rollout-harness.io/test": "smoke"})
        await wait_rollout(TriggerContext(kube, ns, 120, d.workload, {}, lambda k, x: None), "deploy smoke")
        await wait_serving(d.url, 60)  # the app takes 2 s to listen; kube-proxy needs a moment for a new Service
        warm: list[RequestRecord] = []
        await run_load(LoadSpec(url=d.url, rate=50, duration=0.4), warm.append)
        assert warm and all(r.status == 200 for r in warm), "the NodePort never answered 200 through 127.0.0.1"
        assert {r.version for r in warm} == {"v1"} and all(r.pod.startswith("web-") for r in warm)

        records: list[RequestRecord] = []

        async def delete_pods() -> None:
            await asyncio.sleep(1.5)
            for p in await asyncio.to_thread(kube.list_pods, ns, d.workload.selector):
                await asyncio.to_thread(kube.delete_pod, ns, p.name, 0)

        await asyncio.gather(run_load(LoadSpec(url=d.url, rate=100, duration=10, mode=ConnMode.NEW), records.append), delete_pods())
        kinds = {r.kind for r in records}
        assert any(r.failed for r in records), "deleting every pod must be visible to the client as failures"
        assert kinds & {"refused", "reset", "connect_timeout", "read_timeout", "no_route"}, kinds
        assert [r for r in records if r.kind == "ok" and r.sched > 8.0], "the replacement pods never served"
    finally:
        await asyncio.to_thread(kube.delete_namespace, ns)
