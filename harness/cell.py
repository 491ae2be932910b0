"""One measured cell, set up: fresh namespace -> deploy -> ready, settled and serving (rollback: roll out the new
release first) -> the generator spawned, waiting for `go`. harness.measure measures it; closing the set-up deletes
the namespace (always), pods at once.

A set-up runs as a task (SetUp), possibly during the tail of the cell before it (Schedule.ahead): closing it
stops what still runs and releases what it made, last made first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import actions, clientpod, cluster, fingerprint, netguard, owner, progress
from harness.actions import TriggerContext
from harness.deploy import deploy, label_value, namespace_name
from harness.errors import HarnessError
from harness.kube import Kube
from harness.leftovers import RECORDS_PREFIX
from harness.load import LoadSpec
from harness.loadworker import LoadProcess
from harness.manifests import (
    REGISTRY,
    Variant,
    as_daemonset,
    as_statefulset,
    load_variant,
    load_workload,
    pod_port,
    registry_port,
    serving_mode,
    with_headless,
    with_ingress,
)
from harness.model import CellSpec, Client, ConnMode, Discovery, RunOptions, Status, Trigger, Via, WorkloadKind
from harness.results import Provenance, RunResult
from harness.serving import wait_serving
from harness.target import Target
from harness.watch import Watcher
from harness.workload import Workload

log = logging.getLogger("harness.cell")
INGRESS_URL = f"http://127.0.0.1:{cluster.INGRESS_NODEPORT}"
"""The ingress controller's entry (manifests/addons/traefik.yaml); a cell's requests name its route's host."""
INGRESS_DOMAIN = "ingress.rollout-harness.test"
"""A cell's route matches the host `<namespace>.INGRESS_DOMAIN` (.test: reserved, never resolved)."""
SERVING_TIMEOUT = 60.0  # a deployed variant that is Ready must answer through the NodePort within this


def cell_variant(opts: RunOptions, name: str, mode: ConnMode = ConnMode.NEW) -> Variant:
    """The manifests a cell deploys: a bundled variant (serving the cell's mode: manifests.serving_mode), or the
    workload with the overlays its name lists (which serves what it serves)."""
    s = opts.subject
    # with a workload, name is the file's stem, then +overlay for each overlay (see load_workload)
    v = load_workload(s.workload, s.port, tuple(name.split("+")[1:]), s.manifests) if s.workload else load_variant(name, s.manifests)
    if not s.workload:
        v = serving_mode(v, mode.value)
    if s.kind is WorkloadKind.STATEFULSET:
        v = as_statefulset(v)
    elif s.kind is WorkloadKind.DAEMONSET:
        v = as_daemonset(v)
    if opts.traffic.discovery is Discovery.REGISTRY:
        registry_port(v)  # a variant without a registry is refused before any cluster work
    if opts.traffic.via is not Via.SERVICE:  # its host is the cell's namespace's (_set_up)
        v = with_ingress(v, retry=opts.traffic.via is Via.INGRESS_RETRY)
    return with_headless(v) if opts.traffic.discovery is Discovery.DNS else v


def base_result(cell: CellSpec, opts: RunOptions, target: Target, status: Status = Status.USED, error: str = "") -> RunResult:
    """What a cell's result says before anything is measured: its name, cell and provenance."""
    v = cell_variant(opts, cell.variant, cell.mode)
    content = {
        "source": fingerprint.source(),
        "commit": fingerprint.commit(),
        "variant": fingerprint.objects(v.deployment, v.service, *v.objects),
    }
    prov = Provenance(opts.provenance(cell.mode), target.versions, target.settings, content | target.images)
    return RunResult(cell.name, cell.variant, cell.trigger, cell.mode, cell.trial, status, (), prov, error=error)


@dataclass(frozen=True)
class Launch:
    """Where the generator runs and what it targets."""

    url: str
    prefix: tuple[str, ...] = ()
    """Empty: a local process; else the command prefix that runs it in the client pod."""
    serving: str = ""
    """The client pod: the Service URL that must answer steadily before the window starts."""
    authority: str = ""
    """The Host header instead of the URL's: the cell's route in the ingress controller (`--via ingress`)."""


@dataclass
class Prepared:
    """A cell deployed, settled and serving; its generator spawned and waiting for `go`."""

    ctx: TriggerContext
    watcher: Watcher
    launch: Launch
    proc: LoadProcess
    records_path: Path
    base: RunResult


@dataclass
class SetUp:
    """A cell's set-up running as a task. Closing it stops the set-up if it still runs and releases what it made
    (generator, client pod, namespace, records), last made first."""

    stack: contextlib.AsyncExitStack
    task: asyncio.Task[Prepared]
    started: float

    @classmethod
    def start(cls, target: Target, cell: CellSpec, opts: RunOptions, label: str = "") -> SetUp:
        stack = contextlib.AsyncExitStack()
        task = asyncio.create_task(_set_up(target, cell, opts, stack, label), name=f"set-up {cell.name}")
        return cls(stack, task, time.monotonic())

    async def prepared(self, turn: float) -> Prepared:
        """The finished set-up; `turn`: when the cell's turn came (the set-up before it was ahead)."""
        p = await self.task
        p.base = replace(p.base, setup_ahead_s=round(min(p.base.setup_s, max(0.0, turn - self.started)), 2))
        return p

    async def close(self) -> None:
        await cancel(self.task)  # a no-op once it has finished
        await self.stack.aclose()


async def cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def _set_up(target: Target, cell: CellSpec, opts: RunOptions, stack: contextlib.AsyncExitStack, label: str) -> Prepared:
    progress.label(label)  # this task's own context: the status line shows its phases under this label
    variant = cell_variant(opts, cell.variant, cell.mode)
    kube, client, via = target.kube, opts.traffic.client, opts.traffic.via
    ns = namespace_name(cell.variant, cell.trigger.value)
    route = f"{ns}.{INGRESS_DOMAIN}" if via is not Via.SERVICE else ""
    if route:  # the cell's own route: cells at once each reach their own pods
        variant = with_ingress(variant, via is Via.INGRESS_RETRY, route)
        progress.phase("installing the ingress controller")
        await asyncio.to_thread(cluster.ensure_ingress, target.kind_name or cluster.CLUSTER)
    workload = Workload.from_objects(variant.deployment, variant.service, variant.objects)
    watcher = Watcher(kube, ns, workload.selector, workload.service)
    t_setup = time.monotonic()
    log.info("[run] %s × %s (%s, trial %d): namespace %s", cell.variant, cell.trigger.value, cell.mode.value, cell.trial, ns)
    target.check(opts, (cell.trigger,))
    # tmpfs when there is one: etcd and containerd fsync on the same disk, and dirty-page throttling must not
    # stall the generator's record writes
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    records_path = (
        Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{RECORDS_PREFIX}{owner.token()}-", dir=shm))) / "records.jsonl"
    )
    stack.push_async_callback(_delete_namespace, kube, ns)
    stack.callback(watcher.stop)
    port = target.ports.take(await asyncio.to_thread(kube.used_nodeports)) if client is Client.HOST else None
    labels = {"rollout-harness.io/variant": label_value(cell.variant), "rollout-harness.io/trigger": cell.trigger.value}
    progress.phase("deploying")

    def mark(kind: str, detail: str) -> None:
        watcher.mark(time.monotonic(), kind, detail)

    async with actions.placing(mark):  # not while another run holds a node away: the pods would all go to one worker
        dep = await deploy(kube, variant, ns, port, labels, opts.traffic.path)
        ctx = TriggerContext(
            kube,
            ns,
            opts.timing.rollout_timeout,
            dep.workload,
            variant.update_env,
            mark,
            new_image=(opts.subject.new_image or "") if opts.subject.workload else None,
            freeze=cluster.freeze_node if target.own else None,
        )
        progress.phase("waiting for the pods")
        # the generator (and the client pod it runs in) gets ready while the workload's pods start; the client
        # pod runs on another node and only waits until then
        pod_client: asyncio.Task[tuple[Launch, LoadProcess]] | None = None
        if client is Client.POD:
            pod_client = asyncio.create_task(_client_pod(target, ns, dep.workload, labels, variant, cell, opts))
            stack.push_async_callback(cancel, pod_client)
        else:
            launch = Launch(INGRESS_URL + opts.traffic.path, authority=route) if route else Launch(dep.url)
            proc = LoadProcess(load_spec(cell, opts, launch.url, launch.authority), records_path)
            stack.callback(proc.kill)  # a no-op once it has finished
            await proc.spawn()
        await actions.wait_rollout(ctx, f"deploy {cell.variant}")
        if cell.trigger is Trigger.ROLLBACK:
            await actions.prepare_rollback(ctx)
        elif cell.trigger is Trigger.HPA_SCALE_IN:
            await actions.prepare_hpa_scale_in(ctx)
    await actions.wait_settled(ctx, f"deploy {cell.variant}")
    progress.phase("starting the load")
    # externalTrafficPolicy Local: the host client's NodePort (on the control-plane node, kind maps it to 127.0.0.1)
    # reaches only that node's pods, so only they can answer the gate
    local = variant.service["spec"].get("externalTrafficPolicy") == "Local" and client is Client.HOST and via is Via.SERVICE
    local = local and target.kind_name
    entry = f"{target.kind_name}-control-plane" if local else None
    pods = await asyncio.to_thread(kube.list_pods, ns, dep.workload.selector)
    ready = frozenset(p.name for p in pods if p.ready and entry in (None, p.node))
    if pod_client is not None:
        launch, proc = await pod_client
        stack.callback(proc.kill)
        await clientpod.wait_serving(launch.prefix, launch.serving, SERVING_TIMEOUT, ready)
        if opts.traffic.discovery is Discovery.REGISTRY:  # and the registry lists every ready pod
            await clientpod.wait_serving(launch.prefix, launch.url, SERVING_TIMEOUT, ready, "harness.registryclient")
        flushed = 0  # a fresh Service has a fresh ClusterIP: no stale conntrack entry can match it
    else:
        assert port is not None
        await wait_serving(launch.url, SERVING_TIMEOUT, ready, cell.mode, launch.authority)
        # through the ingress the host's connections end at the controller, whose own go to pod IPs: nothing to flush
        flushed = await asyncio.to_thread(netguard.flush_conntrack, list(target.nodes), port) if via is Via.SERVICE else 0
        if flushed:
            log.debug("[run] flushed %d conntrack entries for :%d", flushed, port)
    base = replace(base_result(cell, opts, target), conntrack_flushed=flushed, setup_s=round(time.monotonic() - t_setup, 2))
    return Prepared(ctx, watcher, launch, proc, records_path, base)


async def _delete_namespace(kube: Kube, ns: str) -> None:
    """Delete the cell's namespace, its pods at once: the next cell's window must not see them terminate."""
    progress.phase("deleting the namespace")
    try:
        await asyncio.to_thread(kube.delete_namespace, ns)  # first: no controller can create a pod in it afterwards
        await asyncio.to_thread(kube.kill_pods, ns)
    except HarnessError as e:
        log.warning("cleanup: %s", e)


def load_spec(cell: CellSpec, opts: RunOptions, url: str, authority: str = "") -> LoadSpec:
    # the schedule only bounds the load: the run stops it at the end of the tail. Worst case of a trigger: three
    # waits (scale: down, settle, up; drain: evictions, pods gone, rollout), then the settle.
    t, w = opts.traffic, opts.timing
    return LoadSpec(
        url=url,
        rate=t.rate,
        duration=w.baseline + 4 * w.rollout_timeout + w.tail + 60,
        mode=cell.mode,
        connect_timeout=t.connect_timeout,
        read_timeout=t.read_timeout,
        connections=t.connections,
        mux_connections=t.mux_connections,
        discovery=t.discovery,
        dns_cache=t.dns_cache,
        registry_fetch=t.registry_fetch,
        authority=authority,
    )


async def _client_pod(
    target: Target, ns: str, workload: Workload, labels: dict[str, str], variant: Variant, cell: CellSpec, opts: RunOptions
) -> tuple[Launch, LoadProcess]:
    """Start the client pod and, in it, the generator (which waits for its start)."""
    t = opts.traffic
    image = t.client_image
    pulled = image is not None  # the user's pushed image; else ours, built here and loaded into kind
    if image is None:
        assert target.kind_name is not None  # Target.check
        image = await asyncio.to_thread(clientpod.ensure_loaded, target.kind_name)
    node = await clientpod.start(target.kube, ns, image, labels, workload.selector, target.own, pulled)
    ip, port = await asyncio.to_thread(target.kube.service_address, ns, workload.service)
    serving = f"http://{ip}:{port}{t.path}"
    url = serving
    if t.discovery is Discovery.DNS:  # the same pods, found through DNS: see harness.discovery
        url = f"http://{workload.deployment}-pods.{ns}.svc:{pod_port(variant)}{t.path}"
    elif t.discovery is Discovery.REGISTRY:  # the same pods, listed by the variant's registry: see harness.registryclient
        url = f"http://{REGISTRY}.{ns}.svc:{registry_port(variant)}{t.path}"
    log.info("[run] client pod on %s, load to %s", node, url)
    launch = Launch(url, tuple(clientpod.exec_prefix(target.kubeconfig, target.context, ns)), serving)
    proc = LoadProcess(load_spec(cell, opts, url), clientpod.RECORDS, launch.prefix)
    await proc.spawn()
    return launch, proc
