"""Issue 2 smoke test on the real kind cluster: a locally built image behind a NodePort answers 200 through
the loopback-mapped port, and deleting its pods makes the harness's client see connection failures."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from harness import cluster
from harness.actions import TriggerContext, wait_rollout
from harness.classify import FailureKind
from harness.kube import Kube
from harness.load import ConnMode, LoadSpec, run_load
from harness.manifests import load_variant
from harness.records import RequestRecord

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def test_nodeport_serves_and_pod_deletion_is_seen(kube: Kube, kind_cluster: cluster.ClusterInfo) -> None:
    ns = f"rh-smoke-{uuid.uuid4().hex[:6]}"
    variant = load_variant("naive")
    port = cluster.NODEPORTS.stop - 1
    await asyncio.to_thread(kube.create_namespace, ns, {"rollout-harness.io/test": "smoke"})
    try:
        dep = variant.deployment | {"kind": "Deployment", "apiVersion": "apps/v1"}
        dep["spec"]["replicas"] = 2
        svc = variant.service
        svc["spec"]["ports"][0]["nodePort"] = port
        await asyncio.to_thread(kube.create, ns, dep)
        await asyncio.to_thread(kube.create, ns, svc)
        ctx = TriggerContext(kube, ns, 120, {}, 2, lambda k, d: None)
        await wait_rollout(ctx, "deploy smoke")
        url = f"http://127.0.0.1:{port}/"

        warm: list[RequestRecord] = []
        for _ in range(60):  # the app takes 2 s to listen; kube-proxy needs a moment for a new Service
            warm.clear()
            await run_load(LoadSpec(url=url, rate=50, duration=0.4), warm.append)
            if warm and all(r.kind == FailureKind.OK.value for r in warm):
                break
            await asyncio.sleep(0.5)
        assert warm and all(r.status == 200 for r in warm), "the NodePort never answered 200 through 127.0.0.1"
        assert {r.version for r in warm} == {"v1"} and all(r.pod.startswith("web-") for r in warm)

        records: list[RequestRecord] = []

        async def delete_pods() -> None:
            await asyncio.sleep(1.5)
            pods = await asyncio.to_thread(kube.list_pods, ns, "app=web")
            for p in pods:
                await asyncio.to_thread(kube.core.delete_namespaced_pod, p.metadata.name, ns, grace_period_seconds=0)

        await asyncio.gather(run_load(LoadSpec(url=url, rate=100, duration=10, mode=ConnMode.NEW), records.append), delete_pods())
        kinds = {r.kind for r in records}
        failed = [r for r in records if r.failed]
        assert failed, "deleting every pod must be visible to the client as failures"
        assert kinds & {"refused", "reset", "connect_timeout", "read_timeout", "no_route"}, kinds
        late_ok = [r for r in records if r.kind == "ok" and r.sched > 8.0]
        assert late_ok, "the replacement pods never served"
    finally:
        await asyncio.to_thread(kube.delete_namespace, ns)
