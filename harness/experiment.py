"""Measured cells (variant × trigger × connection mode × trial) on a cluster, and the matrix of them.

Per cell: fresh namespace -> deploy -> ready, settled and serving (rollback: roll out the new release first)
-> load ‖ watch ‖ [baseline, trigger until complete, until settled, tail] -> analyse -> delete namespace (always).
In a matrix the next cell's set-up (everything before `load`) runs during the current cell's tail (RunOptions.ahead).
No argparse and no printing here: harness.cli builds RunOptions and cells and renders the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness import __version__, actions, clientpod, cluster, netguard, plot, progress, provision
from harness.actions import Trigger, TriggerContext
from harness.analysis import Thresholds, analyse
from harness.classify import TIMER_KINDS
from harness.deploy import SERVING_STREAK, PortPool, deploy, label_value, namespace_name, remove_leftovers, wait_serving
from harness.errors import HarnessError, RolloutError, UsageError
from harness.kube import Kube, context_name
from harness.load import ConnMode, Discovery, LoadSpec
from harness.loadworker import LoadProcess
from harness.manifests import Variant, as_statefulset, load_variant, load_workload, pod_port, with_headless
from harness.records import read_records
from harness.resources import cache_dir
from harness.results import GeneratorStats, Provenance, RunResult, Status, Window
from harness.watch import Event, Watcher
from harness.workload import Workload

log = logging.getLogger("harness.experiment")
SERVING_TIMEOUT = 60.0  # a deployed variant that is Ready must answer through the NodePort within this


@dataclass(frozen=True)
class CellSpec:
    variant: str
    trigger: Trigger
    mode: ConnMode
    trial: int = 1

    @property
    def name(self) -> str:
        return f"{self.variant}__{self.trigger.value}__{self.mode.value}__t{self.trial}"


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a measured run, with its default and why. The CLI reads its defaults from here."""

    rate: float = 200.0
    """Requests per second (open loop). 200/s resolves outages of 5 ms per request and leaves the 2 cores to the cluster."""
    baseline: float = 3.0
    """Seconds of steady load before the trigger; a failure in it marks the run noisy."""
    tail: float = 3.0
    """Seconds of load after the disruption settled: kube-proxy can lag the EndpointSlices by ~2 s."""
    rollout_timeout: float = 180.0
    """A rollout (or a settle, or an eviction round) that takes longer fails the run."""
    connect_timeout: float = LoadSpec.connect_timeout
    read_timeout: float = LoadSpec.read_timeout
    connections: int = LoadSpec.connections
    max_lateness: float = Thresholds.max_lateness
    max_gap: float = Thresholds.max_gap
    trials: int = 1
    """Runs per cell; `compare` defaults to 3 so a verdict rests on more than one run."""
    stop_early: bool = False
    """Adaptive trials: a cell runs no more trials once its verdict cannot change (see settled_lossy)."""
    kind: str = "deployment"
    """deployment, or statefulset: the same pods as a StatefulSet (see manifests.as_statefulset)."""
    parallel: int = 1
    """Cells run at once, each in its own namespace (drains still take turns: see actions.exclusive)."""
    ahead: bool = True
    """With parallel 1: set the next cell up (namespace, pods, the Service answering) during this cell's tail, once
    its old pods are gone, instead of after its window: about 3 s less per cell (see README, Time to verdict)."""
    out: Path | None = None
    """Directory for one JSON per run (and records with keep_records)."""
    manifests: Path | None = None
    """Variants directory (default: the bundled one)."""
    keep_records: bool = False
    pictures: bool = True
    """With out: a PNG per run next to its JSON (needs the `plot` extra, matplotlib; skipped without it)."""
    workload: Path | None = None
    """Your own workload (YAML: one Deployment, its Service, extra objects) instead of a bundled variant; the cells'
    variant is then its name (the file's stem) followed by `+overlay` for each overlay applied to it."""
    new_image: str | None = None
    """With workload: the image set-image moves to; None: a pod-template change with the same image."""
    path: str = "/"
    """The HTTP path every request asks for."""
    port: int | None = None
    """With workload: the Service port the load goes to (default: its first)."""
    client: str = "host"
    """Where the load comes from: `host` (through the NodePort kind maps to 127.0.0.1) or `pod` (a client pod on
    the control-plane node, through the Service's ClusterIP; see harness.clientpod)."""
    discovery: str = "service"
    """How the client finds the pods: `service` (through the Service: kube-proxy picks a pod per connection) or
    `dns` (the client resolves the headless Service `<name>-pods` itself and connects to each pod IP in turn; needs
    client `pod`; see harness.discovery). With dns the tail starts when the client's last answer has expired."""
    dns_cache: float = 0.0
    """Discovery dns: the client keeps each answer this many seconds instead of its TTL (0: the TTL)."""
    client_image: str | None = None
    """--client pod on a cluster that pulls images: the client image pushed where it can pull it from (build it with
    `rollout-harness client-image`); default: build it here and load it into kind."""

    def provenance_options(self, mode: ConnMode) -> dict[str, float | int | str]:
        skip = {"out", "manifests", "keep_records", "pictures", "stop_early"}
        # recorded only when set away from their defaults, so older results still fold with new ones
        only_set = {
            f.name: f.default
            for f in fields(self)
            if f.name in {"workload", "new_image", "port", "client_image", "parallel", "ahead", "kind", "discovery", "dns_cache"}
        }
        opts = {k: v for k, v in asdict(self).items() if k not in skip and not (k in only_set and v == only_set[k])}
        return {k: str(v) if isinstance(v, Path) else v for k, v in opts.items()} | {"mode": mode.value}

    def variant(self, name: str) -> Variant:
        if self.workload:  # name: the file's stem, then +overlay for each overlay (see load_workload)
            v = load_workload(self.workload, self.port, tuple(name.split("+")[1:]), self.manifests)
        else:
            v = load_variant(name, self.manifests)
        v = as_statefulset(v) if self.kind == "statefulset" else v
        return with_headless(v) if self.discovery == Discovery.DNS else v

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.max_lateness, self.max_gap)


@dataclass(frozen=True)
class Target:
    """The cluster a matrix runs on."""

    kube: Kube
    ports: PortPool
    versions: dict[str, str]
    settings: dict[str, str]
    nodes: tuple[str, ...] = ()
    """Node containers whose conntrack tables are flushed for a cell's NodePort before it (kind only)."""
    kubeconfig: Path | None = None
    context: str | None = None
    kind_name: str | None = None
    """The kind cluster's name when the target is a kind cluster (images are loaded into it), else None."""
    own: bool = True
    """The harness's own kind cluster: the host client's NodePorts are mapped to 127.0.0.1, nodes are reachable."""


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


async def connect(no_up: bool, kubeconfig: Path | None = None, context: str | None = None) -> Target:
    """The harness's kind cluster, brought up unless no_up; or, given a kubeconfig and/or a context, that cluster,
    never created or deleted. Removes leftovers of dead runs (only namespaces the harness created)."""
    if kubeconfig is not None or context is not None:
        return await _given(kubeconfig, context)
    kubeconfig = cluster.kubeconfig_path()
    if no_up:
        if not kubeconfig.exists():
            raise HarnessError(f"no kubeconfig at {kubeconfig}; run `rollout-harness up` first")
    else:
        await asyncio.to_thread(cluster.up)
    kube = Kube(kubeconfig)
    return await _own(kube, await _reach(kube), kubeconfig, None)


async def _own(kube: Kube, server: str, kubeconfig: Path | None, context: str | None) -> Target:
    """The harness's own kind cluster: NodePorts on 127.0.0.1, node containers and settings read from docker."""
    return Target(
        kube,
        PortPool(cluster.NODEPORTS, cache_dir() / "nodeports.json"),
        _versions(server),
        {"cluster": cluster.CLUSTER} | await asyncio.to_thread(cluster.settings),
        tuple(await asyncio.to_thread(cluster.node_names)),
        kubeconfig,
        context,
        cluster.CLUSTER,
    )


async def _given(kubeconfig: Path | None, context: str | None) -> Target:
    if kubeconfig is not None and not kubeconfig.is_file():
        raise HarnessError(f"--kubeconfig {kubeconfig}: no such file")
    name = await asyncio.to_thread(context_name, kubeconfig, context)
    kube = Kube(kubeconfig, context)
    server = await _reach(kube)
    kind = name.removeprefix("kind-") if name.startswith("kind-") else None
    if kind == cluster.CLUSTER:  # the harness's own cluster, named by its kubeconfig: all of it works, nothing is created
        return await _own(kube, server, kubeconfig, context)
    if kind is not None:
        await asyncio.to_thread(provision.build_probe_images)
        await asyncio.to_thread(cluster.load_images, cluster.PROBE_IMAGES, kind)
    settings = {"cluster": f"context {name}", "proxy_mode": await asyncio.to_thread(kube.proxy_mode)}
    return Target(kube, PortPool(cluster.NODEPORTS), _versions(server), settings, (), kubeconfig, context, kind, own=False)


async def _reach(kube: Kube) -> str:
    server = await asyncio.to_thread(kube.ping)
    log.info("[run] cluster API %s", server)
    await remove_leftovers(kube)
    return server


def _versions(server: str) -> dict[str, str]:
    return {"harness": __version__, "python": platform.python_version(), "kubernetes": server}


def _base(cell: CellSpec, opts: RunOptions, target: Target, status: Status = Status.USED, error: str = "") -> RunResult:
    prov = Provenance(opts.provenance_options(cell.mode), target.versions, target.settings)
    return RunResult(cell.name, cell.variant, cell.trigger.value, cell.mode.value, cell.trial, status, (), prov, error=error)


async def run_cell(
    target: Target, cell: CellSpec, opts: RunOptions, *, set_up: SetUp | None = None, on_tail: Callable[[], None] | None = None
) -> RunResult:
    """Set the cell up (or take the set-up started ahead for it), measure it, release everything it made.
    on_tail: called when the cell's tail starts (its old pods gone); run_matrix sets the next cell up from then."""
    turn = time.monotonic()
    s = set_up or SetUp.start(target, cell, opts)  # started now: none of it is ahead
    try:
        p = await s.task
        p.base = replace(p.base, setup_ahead_s=round(min(p.base.setup_s, max(0.0, turn - s.started)), 2))
        return await _measure(cell, opts, p, on_tail)
    finally:
        await s.close()


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
    """A cell's set-up running as a task, possibly while the cell before it is still measured. Closing it stops the
    set-up if it still runs and releases what it made (generator, client pod, namespace, records), last made first."""

    stack: contextlib.AsyncExitStack
    task: asyncio.Task[Prepared]
    started: float

    @classmethod
    def start(cls, target: Target, cell: CellSpec, opts: RunOptions, label: str = "") -> SetUp:
        stack = contextlib.AsyncExitStack()
        task = asyncio.create_task(_set_up(target, cell, opts, stack, label), name=f"set-up {cell.name}")
        return cls(stack, task, time.monotonic())

    async def close(self) -> None:
        await _cancel(self.task)  # a no-op once it has finished
        await self.stack.aclose()


async def _set_up(target: Target, cell: CellSpec, opts: RunOptions, stack: contextlib.AsyncExitStack, label: str) -> Prepared:
    progress.label(label)  # this task's own context: the status line shows its phases under this label
    variant = opts.variant(cell.variant)
    kube = target.kube
    ns = namespace_name(cell.variant, cell.trigger.value)
    workload = Workload.from_objects(variant.deployment, variant.service)
    watcher = Watcher(kube, ns, workload.selector, workload.service)
    t_setup = time.monotonic()
    log.info("[run] %s × %s (%s, trial %d): namespace %s", cell.variant, cell.trigger.value, cell.mode.value, cell.trial, ns)
    if opts.client == "host" and not target.own:
        raise UsageError("--client host needs the harness's own kind cluster (its NodePorts are mapped to 127.0.0.1); use --client pod")
    if opts.discovery == Discovery.DNS and opts.client != "pod":
        raise UsageError("--discovery dns needs --client pod: the cluster's DNS and its pod IPs are reachable only from inside it")
    if opts.client == "pod" and target.kind_name is None and not opts.client_image:
        raise UsageError(
            "--client pod: this context is not a kind cluster (kind-NAME), so the client image cannot be loaded into it; "
            "push the one `rollout-harness client-image` builds and pass --client-image REF"
        )
    # tmpfs when there is one: etcd and containerd fsync on the same disk, and dirty-page throttling must not
    # stall the generator's record writes
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    records_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rh-records-", dir=shm))) / "records.jsonl"
    stack.push_async_callback(_delete_namespace, kube, ns)
    stack.callback(watcher.stop)
    port = target.ports.take(await asyncio.to_thread(kube.used_nodeports)) if opts.client == "host" else None
    labels = {"rollout-harness.io/variant": label_value(cell.variant), "rollout-harness.io/trigger": cell.trigger.value}
    progress.phase("deploying")
    dep = await deploy(kube, variant, ns, port, labels, opts.path)
    ctx = TriggerContext(
        kube,
        ns,
        opts.rollout_timeout,
        dep.workload,
        variant.update_env,
        lambda kind, detail: watcher.mark(time.monotonic(), kind, detail),
        new_image=(opts.new_image or "") if opts.workload else None,
        freeze=cluster.freeze_node if target.own else None,
    )
    progress.phase("waiting for the pods")
    # the generator (and the client pod it runs in) gets ready while the workload's pods start; the client
    # pod runs on another node and only waits until then
    client: asyncio.Task[tuple[Launch, LoadProcess]] | None = None
    if opts.client == "pod":
        client = asyncio.create_task(_client_pod(target, ns, dep.workload, labels, variant, cell, opts))
        stack.push_async_callback(_cancel, client)
    else:
        launch = Launch(dep.url)
        proc = LoadProcess(_spec(cell, opts, launch.url), records_path)
        stack.callback(proc.kill)  # a no-op once it has finished
        await proc.spawn()
    await actions.wait_rollout(ctx, f"deploy {cell.variant}")
    if cell.trigger is Trigger.ROLLBACK:
        await actions.prepare_rollback(ctx)
    await actions.wait_settled(ctx, f"deploy {cell.variant}")
    progress.phase("starting the load")
    ready = frozenset(p.name for p in await asyncio.to_thread(kube.list_pods, ns, dep.workload.selector) if p.ready)
    if client is not None:
        launch, proc = await client
        stack.callback(proc.kill)
        await clientpod.wait_serving(launch.prefix, launch.serving, SERVING_STREAK, SERVING_TIMEOUT, ready)
        flushed = 0  # a fresh Service has a fresh ClusterIP: no stale conntrack entry can match it
    else:
        assert port is not None
        await wait_serving(dep.url, SERVING_TIMEOUT, ready)
        flushed = await asyncio.to_thread(netguard.flush_conntrack, list(target.nodes), port)
        if flushed:
            log.debug("[run] flushed %d conntrack entries for :%d", flushed, port)
    base = replace(_base(cell, opts, target), conntrack_flushed=flushed, setup_s=round(time.monotonic() - t_setup, 2))
    return Prepared(ctx, watcher, launch, proc, records_path, base)


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def _delete_namespace(kube: Kube, ns: str) -> None:
    """Delete the cell's namespace, its pods at once: the next cell's window must not see them terminate."""
    progress.phase("deleting the namespace")
    try:
        await asyncio.to_thread(kube.delete_namespace, ns)  # first: no controller can create a pod in it afterwards
        await asyncio.to_thread(kube.kill_pods, ns)
    except HarnessError as e:
        log.warning("cleanup: %s", e)


def _spec(cell: CellSpec, opts: RunOptions, url: str) -> LoadSpec:
    # the schedule only bounds the load: the run stops it at the end of the tail. Worst case of a trigger: three
    # waits (scale: down, settle, up; drain: evictions, pods gone, rollout), then the settle.
    return LoadSpec(
        url=url,
        rate=opts.rate,
        duration=opts.baseline + 4 * opts.rollout_timeout + opts.tail + 60,
        mode=cell.mode,
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
        connections=opts.connections,
        discovery=Discovery(opts.discovery),
        dns_cache=opts.dns_cache,
    )


@dataclass(frozen=True)
class Launch:
    """Where the generator runs and what it targets."""

    url: str
    prefix: tuple[str, ...] = ()
    """Empty: a local process; else the command prefix that runs it in the client pod."""
    serving: str = ""
    """The client pod: the Service URL that must answer steadily before the window starts."""


async def _client_pod(
    target: Target, ns: str, workload: Workload, labels: dict[str, str], variant: Variant, cell: CellSpec, opts: RunOptions
) -> tuple[Launch, LoadProcess]:
    """Start the client pod and, in it, the generator (which waits for its start)."""
    image = opts.client_image
    pulled = image is not None  # the user's pushed image; else ours, built here and loaded into kind
    if image is None:
        assert target.kind_name is not None  # run_cell checked
        image = await asyncio.to_thread(clientpod.ensure_loaded, target.kind_name)
    node = await clientpod.start(target.kube, ns, image, labels, workload.selector, target.own, pulled)
    ip, port = await asyncio.to_thread(target.kube.service_address, ns, workload.service)
    serving = f"http://{ip}:{port}{opts.path}"
    url = serving
    if opts.discovery == Discovery.DNS:  # the same pods, found through DNS: see harness.discovery
        url = f"http://{workload.deployment}-pods.{ns}.svc:{pod_port(variant)}{opts.path}"
    log.info("[run] client pod on %s, load to %s", node, url)
    launch = Launch(url, tuple(clientpod.exec_prefix(target.kubeconfig, target.context, ns)), serving)
    proc = LoadProcess(_spec(cell, opts, url), clientpod.RECORDS, launch.prefix)
    await proc.spawn()
    return launch, proc


async def _measure(cell: CellSpec, opts: RunOptions, p: Prepared, on_tail: Callable[[], None] | None) -> RunResult:
    ctx, watcher, launch, proc, records_path, base = p.ctx, p.watcher, p.launch, p.proc, p.records_path, p.base
    marks: dict[str, float] = {}
    dns_keep = 0.0

    async def control() -> None:
        progress.phase("baseline load")
        await asyncio.sleep(opts.baseline)
        async with actions.exclusive(cell.trigger, ctx):  # a wait here lengthens the baseline, not the window
            progress.phase(cell.trigger.value)
            marks["trigger"] = time.monotonic()
            await actions.fire(cell.trigger, ctx)
            marks["complete"] = time.monotonic()
        ctx.mark("complete", f"{cell.trigger.value}: rollout complete")
        progress.phase("waiting for old pods to go")
        marks["gone"] = await actions.wait_settled(ctx, cell.trigger.value)
        marks["settled"] = time.monotonic()
        ctx.mark("settled", "old pods gone, endpoints settled")
        progress.phase("tail load")
        if on_tail is not None:
            on_tail()
        await asyncio.sleep(dns_keep + opts.tail)  # a DNS client may hold a gone pod's address for dns_keep s
        marks["end"] = time.monotonic()

    started = await proc.start()
    dns_keep = started.dns_keep
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(asyncio.to_thread(watcher.run_pods), name="watch-pods")
            tg.create_task(asyncio.to_thread(watcher.run_endpoints), name="watch-endpoints")
            await tg.create_task(control(), name="control")
            watcher.stop()
    except* HarnessError as eg:
        watcher.stop()
        raise eg.exceptions[0] from None
    progress.phase("analysing")
    res = await proc.finish()
    if launch.prefix:
        await clientpod.fetch(launch.prefix, clientpod.RECORDS, records_path)
    t0 = res.t0_mono
    window = Window(*(round(marks[k] - t0, 3) for k in ("trigger", "complete", "gone", "settled", "end")))
    events = [Event(round(e.t - t0, 3), e.source, e.name, e.state) for e in watcher.events]
    gen = GeneratorStats(
        res.sent,
        0,
        round(res.cpu_seconds, 3),
        round(res.cpu_ms_per_1k, 1),
        round(res.wall_seconds, 3),
        started.scheduling,
        started.max_in_flight,
    )
    records = list(read_records(records_path))
    result = analyse(base, records, window, events, opts.rate, opts.thresholds, gen)
    if opts.pictures and opts.out and plot.available():
        plot.run_png(result, records, opts.out / f"{cell.name}.png")
    if opts.keep_records and opts.out:
        opts.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(records_path, opts.out / f"{cell.name}.records.jsonl")
    log.info(
        "[run] %s × %s: %s; lost %d %s, settled %.1fs after the trigger, max gap %.0f ms%s",
        cell.variant,
        cell.trigger.value,
        result.status.value,
        result.lost,
        result.lost_by_kind or "",
        window.settled_s - window.trigger_s,
        result.blindness.max_gap_ms if result.blindness else 0,
        f" ({'; '.join(result.reasons)})" if result.reasons else "",
    )
    return result


Progress = Callable[[int, int, CellSpec], None]

EARLY_STOP_LOST = 10
"""A used trial that lost at least this many requests of kinds a stalled or noisy client cannot produce (refused,
no_route, reset, HTTP errors) makes its cell lossy whatever the other trials show."""


def settled_lossy(r: RunResult) -> str:
    """Why no further trial can change this cell's verdict ("" if one could)."""
    if r.status is not Status.USED:
        return ""
    real = sum(n for k, n in r.lost_by_kind.items() if k not in TIMER_KINDS)
    if real < EARLY_STOP_LOST:
        return ""
    return f"stopped after trial {r.trial}: lossy whatever follows ({real} refused/no-route/reset/HTTP failures)"


async def run_matrix(target: Target, cells: list[CellSpec], opts: RunOptions, progress: Progress | None = None) -> list[RunResult]:
    """Run the cells in order, opts.parallel at a time; a rollout that fails becomes a `failed` result and the
    matrix goes on (a single cell re-raises, so `run` reports the error itself). With opts.ahead (and parallel 1)
    the next cell is set up during the current cell's tail. Each result is written to opts.out as it comes; the
    list comes back in the cells' order."""
    results: dict[int, RunResult] = {}
    settled: set[tuple[str, Trigger, ConnMode]] = set()
    todo = iter(enumerate(cells, 1))  # shared by the workers: each cell is taken once
    ahead = opts.ahead and opts.parallel == 1

    def needed(cell: CellSpec) -> bool:
        if (cell.variant, cell.trigger, cell.mode) not in settled:
            return True
        log.info(
            "[compare] %s × %s (%s): trial %d not needed, verdict settled", cell.variant, cell.trigger.value, cell.mode.value, cell.trial
        )
        return False

    def take() -> tuple[int, CellSpec, SetUp | None] | None:
        """The next cell still needed, not set up yet."""
        return next(((i, c, None) for i, c in todo if needed(c)), None)

    async def worker() -> None:
        upcoming = take()  # the next cell, with its set-up if that started during the tail of the cell before it

        def on_tail() -> None:
            nonlocal upcoming
            if ahead and (n := take()) is not None:
                upcoming = (n[0], n[1], SetUp.start(target, n[1], opts, label="next cell: "))

        try:
            while upcoming is not None:
                (i, cell, set_up), upcoming = upcoming, None
                if not needed(cell):  # settled by the cell measured while this one was set up
                    if set_up is not None:
                        await set_up.close()
                    upcoming = take()
                    continue
                if progress is not None:
                    progress(i, len(cells), cell)
                try:
                    result = await run_cell(target, cell, opts, set_up=set_up, on_tail=on_tail)
                except RolloutError as e:
                    if len(cells) == 1:
                        raise
                    log.warning("[compare] %s × %s: %s", cell.variant, cell.trigger.value, e)
                    result = _base(cell, opts, target, Status.FAILED, str(e))
                if opts.stop_early and cell.trial < opts.trials and (why := settled_lossy(result)):
                    result = replace(result, stopped=why)
                    settled.add((cell.variant, cell.trigger, cell.mode))
                results[i] = result
                if opts.out:
                    result.write(opts.out / f"{result.name}.json")
                if upcoming is None:
                    upcoming = take()
        finally:
            if upcoming is not None and upcoming[2] is not None:
                await upcoming[2].close()

    workers = max(1, min(opts.parallel, len(cells)))
    if workers == 1:
        await worker()
    else:
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(workers):
                    tg.create_task(worker())
        except* Exception as eg:  # the first error, as one would get it from a single worker
            raise eg.exceptions[0] from None
    return [results[i] for i in sorted(results)]
