"""Triggers: set-image, scale, drain, rollback, restart, node-down, each waiting for the rollout to complete; and
wait_settled, which ends every trigger's disruption window the same way.

All Kubernetes calls go through harness.kube via asyncio.to_thread so the load loop never blocks. Names (the
Deployment, selector, container, Service) come from the deployed Workload, never from constants.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness import disruption, hostlock
from harness.errors import HarnessError, RolloutError
from harness.kube import STATEFULSET, Kube, now_rfc3339
from harness.model import Trigger
from harness.waiting import wait_for
from harness.workload import Workload

POLL = 0.25  # seconds between status reads: ~4 API calls/s, fine-grained enough for windows of 5-60 s
EVICT_RETRY = 1.0  # kubectl drain retries a 429 every 5 s; 1 s keeps runs short (loss under a PDB is the same)


Mark = Callable[[str, str], None]  # (event kind, detail) -> recorded on the run's timeline


@dataclass(frozen=True)
class TriggerContext:
    kube: Kube
    namespace: str
    timeout: float
    workload: Workload
    update_env: dict[str, str]
    mark: Mark
    new_version: str = "v2"
    new_image: str | None = None
    """None: the bundled probe app (image tag v1 -> new_version, VERSION env). A workload: the image set-image moves
    its container to, or "" for a pod-template change that forces a new ReplicaSet with the same image."""
    freeze: Callable[[str, bool], None] | None = None
    """Freeze (True) or thaw (False) a node's machine: the harness's own kind cluster only (docker pause)."""


async def wait_rollout(ctx: TriggerContext, what: str) -> None:
    """Poll the Deployment until the controller calls it complete; fail fast on ProgressDeadlineExceeded."""
    name = ctx.workload.deployment

    async def probe() -> tuple[bool | None, str]:
        st = await asyncio.to_thread(ctx.kube.rollout_status, ctx.namespace, ctx.workload.kind, name)
        if st.stalled:
            raise RolloutError(f"{what}: deployment {name!r} stopped progressing ({st.stalled})")
        if st.complete:
            return True, st.describe()
        pods = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, ctx.workload.selector)
        reasons = sorted({f"{p.reason}" for p in pods if p.reason})
        return None, st.describe() + (f"; pods: {'; '.join(reasons)}" if reasons else "")

    await wait_for(probe, timeout=ctx.timeout, every=POLL, what=f"{what}: rollout of deployment {name!r}")


async def wait_settled(ctx: TriggerContext, what: str) -> float:
    """Wait until the disruption is over: no pod of the workload is terminating (every old pod is deleted, not
    just marked), the pod count is the desired replica count, and the Service's EndpointSlices list exactly those
    pods, all ready. Returns the monotonic time at which no pod was terminating any more."""
    gone_at: list[float] = []

    async def probe() -> tuple[bool | None, str]:
        pods = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, ctx.workload.selector)
        st = await asyncio.to_thread(ctx.kube.rollout_status, ctx.namespace, ctx.workload.kind, ctx.workload.deployment)
        terminating = [p.name for p in pods if p.deleting]
        if terminating:
            return None, f"terminating: {', '.join(sorted(terminating))}"
        if not gone_at:
            gone_at.append(time.monotonic())
        live = {p.name for p in pods if p.ready}
        if len(pods) != st.replicas or len(live) != st.replicas:
            return None, f"{len(live)} of {st.replicas} pods ready ({len(pods)} pods)"
        slices = await asyncio.to_thread(ctx.kube.endpoint_slices, ctx.namespace, ctx.workload.service)
        eps = {e.pod: e.ready for s in slices for e in s.endpoints}
        if set(eps) != live or not all(eps.values()):
            return None, f"endpoints {sorted(eps)} vs ready pods {sorted(live)}"
        return True, "settled"

    await wait_for(probe, timeout=ctx.timeout, every=POLL, what=f"{what}: old pods gone and endpoints settled")
    return gone_at[0]


def _update(ctx: TriggerContext) -> tuple[dict[str, Any], str]:
    """The new release set-image (and the rollback's setup) rolls out, and how the timeline names it."""
    w = ctx.workload
    env = [{"name": k, "value": v} for k, v in ctx.update_env.items()]
    if ctx.new_image is None:
        image = f"{w.image_repo}:{ctx.new_version}"
        container = {"name": w.container, "image": image, "env": [{"name": "VERSION", "value": ctx.new_version}, *env]}
    elif ctx.new_image:
        image = ctx.new_image
        container = {"name": w.container, "image": image, **({"env": env} if env else {})}
    else:
        bump = {"annotations": {"rollout-harness.io/release": now_rfc3339()}}
        return {"spec": {"template": {"metadata": bump}}}, "new pod template, same image (no --new-image)"
    return {"spec": {"template": {"spec": {"containers": [container]}}}}, f"set image {image}"


def nth_rollout(ctx: TriggerContext, n: int) -> TriggerContext:
    """The context of the n-th rollout (0-based) of a series on one set-up: set-image goes forth and back between the
    deployed image and the new one (v1 -> v2 -> v1 ...); the other series triggers repeat as they are."""
    if n % 2 == 0:
        return ctx
    if ctx.new_image is None:
        w = ctx.workload
        return replace(ctx, new_version=w.image[len(w.image_repo) + 1 :] or "latest")
    return replace(ctx, new_image=ctx.workload.image) if ctx.new_image else ctx


async def _patch(ctx: TriggerContext, patch: dict[str, Any] | list[dict[str, Any]], what: str) -> None:
    await asyncio.to_thread(ctx.kube.patch_workload, ctx.namespace, ctx.workload.kind, ctx.workload.deployment, patch, what)


async def set_image(ctx: TriggerContext) -> None:
    patch, what = _update(ctx)
    ctx.mark("trigger", what)
    await _patch(ctx, patch, what)
    await wait_rollout(ctx, what)


async def scale(ctx: TriggerContext) -> None:
    for n in (1, ctx.workload.replicas):
        ctx.mark("trigger", f"scale to {n}")
        await _patch(ctx, {"spec": {"replicas": n}}, f"scale to {n}")
        await wait_rollout(ctx, f"scale to {n}")
        if n == 1:  # let the scaled-down pods finish terminating before scaling back up
            await wait_settled(ctx, "scale to 1")


async def restart(ctx: TriggerContext) -> None:
    ctx.mark("trigger", "rollout restart")
    patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now_rfc3339()}}}}}
    await _patch(ctx, patch, "restart")
    await wait_rollout(ctx, "rollout restart")


async def prepare_rollback(ctx: TriggerContext) -> None:
    """Setup outside the measured window: roll out the new release (with the variant's update_env, i.e. the bad
    release where the variant has one), so that the measured rollback undoes it."""
    patch, what = _update(ctx)
    await _patch(ctx, patch, what)
    await wait_rollout(ctx, f"{what} (before rollback)")
    await wait_settled(ctx, "before rollback")


async def rollback(ctx: TriggerContext) -> None:
    """`kubectl rollout undo`: copy the previous revision's pod template (minus pod-template-hash) back."""
    revs = await asyncio.to_thread(ctx.kube.revisions, ctx.namespace, ctx.workload.kind, ctx.workload.selector)
    if len(revs) < 2:
        raise RolloutError(f"rollback: {ctx.workload.kind.lower()} {ctx.workload.deployment!r} has no previous revision")
    prev = revs[-2]
    ctx.mark("trigger", f"rollout undo to revision {prev.number}")
    await _patch(ctx, [{"op": "replace", "path": "/spec/template", "value": prev.template}], "rollout undo")
    await wait_rollout(ctx, "rollout undo")


METRICS_TIMEOUT = 180.0
"""How long the autoscaler may take to read its first metrics (metrics-server scrapes every 15 s; new pods take a
scrape or two)."""
SCALE_IN_TARGET = 100_000
"""The CPU target (% of the request) hpa-scale-in raises the autoscaler's to: far above any use, so that it wants
its minimum."""


def _autoscaler(ctx: TriggerContext) -> str:
    if not ctx.workload.autoscaler:
        raise RolloutError(
            f"hpa-scale-in: the variant has no HorizontalPodAutoscaler for {ctx.workload.deployment!r} (try the hpa-* variants)"
        )
    return ctx.workload.autoscaler


async def prepare_hpa_scale_in(ctx: TriggerContext) -> None:
    """Before the window: wait until the autoscaler reads its metric and holds the workload where it is."""
    name = _autoscaler(ctx)

    async def probe() -> tuple[bool | None, str]:
        hpa = await asyncio.to_thread(ctx.kube.autoscaler, ctx.namespace, name)
        if hpa.metrics and hpa.desired == hpa.current == ctx.workload.replicas:
            return True, "metrics read"
        return None, f"{hpa.current} -> {hpa.desired} replicas, metrics {'read' if hpa.metrics else 'not read'}; {hpa.why}"

    what = f"autoscaler {name!r}: first metrics (is metrics-server installed? `rollout-harness up` installs it)"
    await wait_for(probe, timeout=METRICS_TIMEOUT, every=1.0, what=what)


async def hpa_scale_in(ctx: TriggerContext) -> None:
    """Let the autoscaler scale in, as it does when load falls: lower its minimum to 1 (the variants hold it at the
    workload's replicas before, since idle pods use no CPU) and raise its CPU target far above the pods' use
    (SCALE_IN_TARGET); wait until it has scaled in and the rollout is complete."""
    name = _autoscaler(ctx)
    target = {"type": "Utilization", "averageUtilization": SCALE_IN_TARGET}
    ctx.mark("trigger", f"autoscaler {name}: minimum 1, CPU target {SCALE_IN_TARGET} %")
    metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    patch = {"spec": {"minReplicas": 1, "metrics": metrics}}
    await asyncio.to_thread(ctx.kube.patch_autoscaler, ctx.namespace, name, patch)

    async def scaled_in() -> tuple[bool | None, str]:
        hpa = await asyncio.to_thread(ctx.kube.autoscaler, ctx.namespace, name)
        st = await asyncio.to_thread(ctx.kube.rollout_status, ctx.namespace, ctx.workload.kind, ctx.workload.deployment)
        return (True if st.replicas == hpa.min_replicas else None), f"{st.replicas} replicas, autoscaler wants {hpa.desired}; {hpa.why}"

    await wait_for(scaled_in, timeout=ctx.timeout, every=POLL, what=f"autoscaler {name!r}: scale in")
    ctx.mark("scale", "the autoscaler scaled in")
    await wait_rollout(ctx, "autoscaler scale-in")


async def _take_node(ctx: TriggerContext, what: str) -> tuple[str, set[str]]:
    """The node `what` takes and our pods on it (disruption.pick_node)."""
    pods = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, ctx.workload.selector)
    return disruption.pick_node(await asyncio.to_thread(ctx.kube.nodes), pods, what)


async def drain(ctx: TriggerContext) -> None:
    """Cordon the schedulable worker with most of our pods (disruption.pick_node), evict them via the Eviction API
    (retrying 429s), uncordon: the cordon and its lifting are recorded on the node (disruption.cordon)."""
    node, victims = await _take_node(ctx, "drain")
    ctx.mark("trigger", f"drain {node}: cordon, evict {len(victims)} pods")
    if not await asyncio.to_thread(disruption.cordon, ctx.kube, node):
        raise RolloutError(f"drain: {node} was cordoned by someone else just now; left as it is")
    pending = set(victims)
    refusals = 0

    async def evict_round() -> tuple[bool | None, str]:
        nonlocal refusals
        for name in sorted(pending):
            if await asyncio.to_thread(ctx.kube.evict, ctx.namespace, name):
                ctx.mark("evicted", name)
                pending.discard(name)
            else:
                refusals += 1
        return (True if not pending else None), f"{len(pending)} evictions refused by a PodDisruptionBudget"

    async def victims_gone() -> tuple[bool | None, str]:  # by name and node: a StatefulSet's replacement keeps the name
        pods = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, ctx.workload.selector)
        left = {p.name for p in pods if p.name in victims and p.node == node}
        return (True if not left else None), f"still there: {', '.join(sorted(left))}"

    try:
        await wait_for(evict_round, timeout=ctx.timeout, every=EVICT_RETRY, what=f"drain {node}: evictions (PDB too strict?)")
        await wait_for(victims_gone, timeout=ctx.timeout, every=POLL, what=f"drain {node}: evicted pods gone")
        if refusals:
            ctx.mark("pdb", f"{refusals} evictions refused by the PodDisruptionBudget (429), retried")
        await wait_rollout(ctx, f"drain {node}")
    finally:
        await asyncio.to_thread(disruption.uncordon, ctx.kube, node)
        ctx.mark("trigger", f"uncordon {node}")


NODE_TIMEOUT = 180.0
"""How long a frozen node may take to be called NotReady (node-monitor-grace-period: 50 s by default) and a thawed
one to be Ready again."""


async def node_down(ctx: TriggerContext) -> None:
    """Freeze the schedulable worker with most of our pods (disruption.pick_node; its kubelet, runtime and pods stop; the kernel still takes
    connections), keep it frozen until the node controller calls it NotReady and its pods are replaced elsewhere
    (after their toleration of node.kubernetes.io/unreachable: 300 s unless the workload sets it; a StatefulSet's
    pods are only evicted, since it replaces a pod only once its node confirms the old one is gone), then thaw it
    and wait until it is Ready. The load sees what clients see while a node is gone: the Service keeps sending to its
    pods until their endpoints go."""
    if ctx.freeze is None:
        raise RolloutError("node-down needs the harness's own kind cluster (it freezes a node's container)")
    node, victims = await _take_node(ctx, "node-down")
    ctx.mark("trigger", f"node-down {node}: frozen with {len(victims)} pods")
    try:  # the freeze is recorded on the node first (a later connect clears a mark whose run is gone)
        await asyncio.to_thread(disruption.mark_frozen, ctx.kube, node)
        await asyncio.to_thread(ctx.freeze, node, True)  # inside: a cancelled freeze still gets its thaw

        async def replaced() -> tuple[bool | None, str]:
            now = await asyncio.to_thread(ctx.kube.list_pods, ctx.namespace, ctx.workload.selector)
            if ctx.workload.kind == STATEFULSET:  # its pods on a lost node come back only once the node confirms
                evicted = {p.name for p in now if p.node == node and p.deleting}
                return (True if evicted >= victims else None), f"{len(evicted)}/{len(victims)} pods on {node} evicted"
            ready = [p for p in now if p.ready and not p.deleting and p.node != node]
            return (True if len(ready) >= ctx.workload.replicas else None), (
                f"{len(ready)}/{ctx.workload.replicas} pods ready elsewhere (the pods on {node} are replaced only "
                "after their toleration of node.kubernetes.io/unreachable, 300 s by default)"
            )

        await _node_becomes(ctx, node, ready=False)
        ctx.mark("node", f"{node} NotReady")
        await wait_for(replaced, timeout=ctx.timeout, every=POLL, what=f"node-down {node}: pods replaced")
        ctx.mark("node", f"{len(victims)} pods " + ("evicted" if ctx.workload.kind == STATEFULSET else "replaced on other nodes"))
    except BaseException as e:
        await asyncio.to_thread(ctx.freeze, node, False)
        with contextlib.suppress(HarnessError):  # best effort: the first error is the one to report
            await asyncio.to_thread(disruption.unmark_frozen, ctx.kube, node)
            if isinstance(e, Exception):  # a failed cell (not Ctrl-C): the next cell must find the node back
                await _node_becomes(ctx, node, ready=True)  # still under the host lock
        raise
    await asyncio.to_thread(ctx.freeze, node, False)
    await asyncio.to_thread(disruption.unmark_frozen, ctx.kube, node)
    ctx.mark("trigger", f"{node} thawed")
    await _node_becomes(ctx, node, ready=True)
    ctx.mark("node", f"{node} Ready again")


async def _node_becomes(ctx: TriggerContext, node: str, ready: bool) -> None:
    async def probe() -> tuple[bool | None, str]:
        now = await asyncio.to_thread(ctx.kube.node_ready, node)
        return (True if now == ready else None), f"node {node} {'not ' if not now else ''}Ready"

    what = f"node-down {node}: node {'Ready again' if ready else 'NotReady'}"
    await wait_for(probe, timeout=NODE_TIMEOUT, every=POLL, what=what)


def placing(mark: Mark) -> contextlib.AbstractAsyncContextManager[None]:
    """Enter while a cell's pods are being placed (deploy until ready): not while a drain or node-down of any harness
    run on this host holds a node away, which would put every new pod on the other worker (a drain of that node would
    then take them all: seen when two runs shared the cluster). Any number of placements at once."""
    return hostlock.held_async(
        "drain", lambda: mark("waiting", "another harness run is taking a node away; waiting to place pods"), shared=True
    )


def exclusive(trigger: Trigger, ctx: TriggerContext) -> contextlib.AbstractAsyncContextManager[None]:
    """Enter before the trigger's window starts. A drain cordons a node and node-down takes one away, which
    changes where every run's new pods can go; two at once could take both workers: they take turns on this host."""
    if trigger not in (Trigger.DRAIN, Trigger.NODE_DOWN):
        return contextlib.nullcontext()
    return hostlock.held_async("drain", lambda: ctx.mark("waiting", "another harness run is taking a node away; waiting"))


async def fire(trigger: Trigger, ctx: TriggerContext) -> None:
    """Run one trigger until the Deployment controller calls the rollout complete."""
    steps = {
        Trigger.SET_IMAGE: set_image,
        Trigger.SCALE: scale,
        Trigger.DRAIN: drain,
        Trigger.ROLLBACK: rollback,
        Trigger.RESTART: restart,
        Trigger.NODE_DOWN: node_down,
        Trigger.HPA_SCALE_IN: hpa_scale_in,
    }
    await steps[trigger](ctx)
