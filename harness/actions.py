"""Triggers: set-image, scale, drain, rollback, restart, each waiting for the rollout to complete.

All Kubernetes calls go through harness.kube via asyncio.to_thread so the load loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.errors import RolloutError
from harness.kube import Kube, now_rfc3339

log = logging.getLogger("harness.actions")
DEPLOYMENT = "web"
SELECTOR = "app=web"
IMAGE = "rollout-harness/probe-app"


class Trigger(StrEnum):
    SET_IMAGE = "set-image"
    SCALE = "scale"
    DRAIN = "drain"
    ROLLBACK = "rollback"
    RESTART = "restart"


Mark = Callable[[str, str], None]  # (event kind, detail) -> recorded on the run's timeline


@dataclass(frozen=True)
class TriggerContext:
    kube: Kube
    namespace: str
    timeout: float
    update_env: dict[str, str]
    replicas: int
    mark: Mark


async def wait_rollout(ctx: TriggerContext, what: str) -> None:
    """Poll the Deployment until complete; fail fast on ProgressDeadlineExceeded or the timeout."""
    st = None
    try:
        async with asyncio.timeout(ctx.timeout):
            while True:
                st = await asyncio.to_thread(ctx.kube.deployment_status, ctx.namespace, DEPLOYMENT)
                if st.stalled:
                    raise RolloutError(f"{what}: deployment {DEPLOYMENT!r} stopped progressing ({st.stalled})")
                if st.complete:
                    return
                await asyncio.sleep(0.25)
    except TimeoutError:
        detail = f"updated {st.updated}/{st.replicas}, available {st.available}/{st.replicas}, pods {st.total}" if st else "no status"
        raise RolloutError(f"{what}: rollout of deployment {DEPLOYMENT!r} did not complete within {ctx.timeout:.0f}s ({detail})") from None


def _image_patch(version: str, extra_env: dict[str, str]) -> dict[str, Any]:
    env = [{"name": "VERSION", "value": version}, *({"name": k, "value": v} for k, v in extra_env.items())]
    return {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": f"{IMAGE}:{version}", "env": env}]}}}}


async def set_image(ctx: TriggerContext, version: str = "v2", extra_env: dict[str, str] | None = None) -> None:
    ctx.mark("trigger", f"set image {IMAGE}:{version}")
    await asyncio.to_thread(
        ctx.kube.patch_deployment, ctx.namespace, DEPLOYMENT, _image_patch(version, extra_env or {}), f"set image to {version}"
    )
    await wait_rollout(ctx, f"set image {version}")


async def scale(ctx: TriggerContext) -> None:
    for n in (1, ctx.replicas):
        ctx.mark("trigger", f"scale to {n}")
        await asyncio.to_thread(ctx.kube.patch_deployment, ctx.namespace, DEPLOYMENT, {"spec": {"replicas": n}}, f"scale to {n}")
        await wait_rollout(ctx, f"scale to {n}")
        if n == 1:  # let the scaled-down pods finish terminating before scaling back up
            await _wait_pods_gone(ctx, keep=1)


async def _wait_pods_gone(ctx: TriggerContext, keep: int) -> None:
    try:
        async with asyncio.timeout(ctx.timeout):
            while len(await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, SELECTOR)) > keep:
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise RolloutError(f"pods did not terminate within {ctx.timeout:.0f}s") from None


async def restart(ctx: TriggerContext) -> None:
    ctx.mark("trigger", "rollout restart")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now_rfc3339()}}}}}
    await asyncio.to_thread(ctx.kube.patch_deployment, ctx.namespace, DEPLOYMENT, patch, "restart")
    await wait_rollout(ctx, "rollout restart")


async def prepare_rollback(ctx: TriggerContext) -> None:
    """Setup outside the measured window: roll to v2 so that there is a previous revision to undo to."""
    await asyncio.to_thread(ctx.kube.patch_deployment, ctx.namespace, DEPLOYMENT, _image_patch("v2", {}), "set image to v2")
    await wait_rollout(ctx, "set image v2 (before rollback)")


async def rollback(ctx: TriggerContext) -> None:
    """`kubectl rollout undo`: copy the previous revision's pod template (minus pod-template-hash) back."""
    rss = await asyncio.to_thread(ctx.kube.replica_sets, ctx.namespace, SELECTOR)

    def revision(rs: Any) -> int:
        return int((rs.metadata.annotations or {}).get("deployment.kubernetes.io/revision", "0"))

    ordered = sorted(rss, key=revision)
    if len(ordered) < 2:
        raise RolloutError(f"rollback: deployment {DEPLOYMENT!r} has no previous revision")
    prev = ordered[-2]
    ctx.mark("trigger", f"rollout undo to revision {revision(prev)}")
    template = ctx.kube.api_client.sanitize_for_serialization(prev.spec.template)
    template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    await asyncio.to_thread(
        ctx.kube.patch_deployment,
        ctx.namespace,
        DEPLOYMENT,
        [{"op": "replace", "path": "/spec/template", "value": json.loads(json.dumps(template))}],
        "rollout undo",
    )
    await wait_rollout(ctx, "rollout undo")


async def drain(ctx: TriggerContext) -> None:
    """Cordon the worker with most of our pods, evict them via the Eviction API (retrying 429s), uncordon."""
    pods = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, SELECTOR)
    per_node = Counter(p.spec.node_name for p in pods if p.spec.node_name)
    if not per_node:
        raise RolloutError("drain: no scheduled pods to drain")
    node = per_node.most_common(1)[0][0]
    victims = [p.metadata.name for p in pods if p.spec.node_name == node]
    ctx.mark("trigger", f"drain {node}: cordon, evict {len(victims)} pods")
    await asyncio.to_thread(ctx.kube.set_unschedulable, node, True)
    try:
        async with asyncio.timeout(ctx.timeout):
            pending = list(victims)
            refusals = 0
            while pending:
                for name in list(pending):
                    if await asyncio.to_thread(ctx.kube.evict, ctx.namespace, name):
                        ctx.mark("evicted", name)
                        pending.remove(name)
                    else:
                        refusals += 1
                if pending:
                    await asyncio.sleep(1.0)  # kubectl drain retries a 429 every 5 s; 1 s keeps runs short
            while any(p.metadata.name in victims for p in await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, SELECTOR)):
                await asyncio.sleep(0.25)
        if refusals:
            ctx.mark("pdb", f"{refusals} evictions refused by the PodDisruptionBudget (429), retried")
        await wait_rollout(ctx, f"drain {node}")
    except TimeoutError:
        raise RolloutError(f"drain {node}: pods were not evicted within {ctx.timeout:.0f}s (PDB too strict?)") from None
    finally:
        await asyncio.to_thread(ctx.kube.set_unschedulable, node, False)
        ctx.mark("trigger", f"uncordon {node}")


async def fire(trigger: Trigger, ctx: TriggerContext) -> None:
    if trigger is Trigger.SET_IMAGE:
        await set_image(ctx, "v2", ctx.update_env)
    elif trigger is Trigger.SCALE:
        await scale(ctx)
    elif trigger is Trigger.DRAIN:
        await drain(ctx)
    elif trigger is Trigger.ROLLBACK:
        await rollback(ctx)
    else:
        await restart(ctx)
