"""One measured cell (variant × trigger × connection mode) on the kind cluster, and the compare matrix.

Flow per run: fresh labelled namespace -> deploy variant -> wait ready -> (rollback: roll to v2 first)
-> load ‖ watch ‖ [baseline, trigger + wait complete, tail] -> stop -> delete namespace (always).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness import actions, cluster
from harness.actions import Trigger, TriggerContext
from harness.errors import ClusterError, HarnessError, RolloutError, UsageError
from harness.kube import Kube
from harness.load import ConnMode, LoadSpec
from harness.loadworker import LoadProcess
from harness.manifests import Variant, available, load_variant
from harness.records import RequestRecord, read_records
from harness.report import compare_table, run_json, write_json
from harness.summary import Accumulator, summarize
from harness.watch import Watcher, attribute

log = logging.getLogger("harness.experiment")

DEFAULT_VARIANTS = ("naive", "readiness", "readiness-prestop", "graceful-app", "best-practice")
DEFAULT_TRIGGERS = ("set-image", "drain")
MAX_FAILURE_SAMPLES = 200


@dataclass(frozen=True)
class CellSpec:
    variant: str
    trigger: Trigger
    mode: ConnMode
    trial: int = 1

    @property
    def name(self) -> str:
        return f"{self.variant}__{self.trigger.value}__{self.mode.value}__t{self.trial}"

    def meta(self, rate: float) -> dict[str, Any]:
        """The fields every run document starts with."""
        return {
            "name": self.name,
            "variant": self.variant,
            "trigger": self.trigger.value,
            "mode": self.mode.value,
            "trial": self.trial,
            "rate": rate,
        }


@dataclass(frozen=True)
class RunOptions:
    rate: float = 200.0
    baseline: float = 3.0
    tail: float = 3.0
    rollout_timeout: float = 180.0
    max_lateness: float = 0.5
    out: Path | None = None
    manifests: Path | None = None
    keep_records: bool = False
    # 3 s: Linux retransmits a lost SYN after 1 s; a client that gives up sooner counts ordinary packet loss on
    # a loaded 2-core machine as rollout loss. Most HTTP clients' connect timeouts are longer still.
    connect_timeout: float = 3.0
    read_timeout: float = 5.0


def _namespace(cell: CellSpec) -> str:
    return f"rh-{cell.variant[:28]}-{cell.trigger.value[:9]}-{uuid.uuid4().hex[:6]}".lower()


_last_port = [cluster.NODEPORTS.start - 1]


def _next_port(used: set[int]) -> int | None:
    """Rotate through the mapped NodePorts, so a run never reuses the port the previous run just released
    (its iptables rules and conntrack entries may still point at that run's dying pods)."""
    ports = list(cluster.NODEPORTS)
    start = ports.index(_last_port[0]) + 1 if _last_port[0] in ports else 0
    for p in ports[start:] + ports[:start]:
        if p not in used:
            _last_port[0] = p
            return p
    return None


async def _deploy(kube: Kube, ns: str, variant: Variant, cell: CellSpec) -> int:
    port = _next_port(await asyncio.to_thread(kube.used_nodeports))
    if port is None:
        raise ClusterError(f"all mapped NodePorts {cluster.NODEPORTS.start}-{cluster.NODEPORTS.stop - 1} are in use")
    labels = {"rollout-harness.io/variant": cell.variant, "rollout-harness.io/trigger": cell.trigger.value}
    await asyncio.to_thread(kube.create_namespace, ns, labels)
    svc = variant.service
    svc["spec"]["ports"][0]["nodePort"] = port
    for obj in (variant.deployment | {"kind": "Deployment", "apiVersion": "apps/v1"}, svc, *variant.objects):
        obj.setdefault("metadata", {}).setdefault("labels", {})["rollout-harness.io/managed"] = "true"
        await asyncio.to_thread(kube.create, ns, obj)
    return port


async def _wait_serving(url: str, timeout: float) -> None:
    """The Service must answer 20 times in a row before the measured window starts."""
    streak = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as s:
        try:
            async with asyncio.timeout(timeout):
                while streak < 20:
                    try:
                        async with s.get(url) as r:
                            streak = streak + 1 if r.status == 200 else 0
                    except (aiohttp.ClientError, TimeoutError):
                        streak = 0
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise ClusterError(f"the Service at {url} did not answer steadily within {timeout:.0f}s") from None


async def run_cell(kube: Kube, cell: CellSpec, opts: RunOptions) -> dict[str, Any]:
    variant = load_variant(cell.variant, opts.manifests)
    ns = _namespace(cell)
    replicas = int(variant.deployment["spec"].get("replicas", 1))
    watcher = Watcher(kube, ns)
    ctx = TriggerContext(
        kube, ns, opts.rollout_timeout, variant.update_env, replicas, lambda kind, detail: watcher.mark(time.time(), kind, detail)
    )
    t_setup = time.monotonic()
    log.info("[run] %s × %s (%s, trial %d): namespace %s", cell.variant, cell.trigger.value, cell.mode.value, cell.trial, ns)
    try:
        port = await _deploy(kube, ns, variant, cell)
        await actions.wait_rollout(ctx, f"deploy {cell.variant}")
        if cell.trigger is Trigger.ROLLBACK:
            await actions.prepare_rollback(ctx)
        url = f"http://127.0.0.1:{port}/"
        await _wait_serving(url, 60)
        setup_s = time.monotonic() - t_setup
        doc = await _measure(kube, cell, opts, ctx, watcher, url)
        doc["phases"] = {"setup_s": round(setup_s, 2)}
        return doc
    finally:
        watcher.stop()
        t_clean = time.monotonic()
        try:
            await asyncio.to_thread(kube.delete_namespace, ns)
        except HarnessError as e:
            log.warning("cleanup: %s", e)
        log.debug("namespace %s deleted in %.1fs", ns, time.monotonic() - t_clean)


async def _measure(kube: Kube, cell: CellSpec, opts: RunOptions, ctx: TriggerContext, watcher: Watcher, url: str) -> dict[str, Any]:
    spec = LoadSpec(
        url=url,
        rate=opts.rate,
        duration=opts.baseline + opts.rollout_timeout + opts.tail + 60,
        mode=cell.mode,
        connect_timeout=opts.connect_timeout,
        read_timeout=opts.read_timeout,
    )
    window: dict[str, float] = {}

    async def control() -> None:
        await asyncio.sleep(opts.baseline)
        window["trigger"] = time.time()
        try:
            await actions.fire(cell.trigger, ctx)
        finally:
            window["complete"] = time.time()
        ctx.mark("complete", f"{cell.trigger.value} complete")
        await asyncio.sleep(opts.tail)

    # tmpfs when there is one: etcd and containerd fsync on the same disk, and dirty-page throttling must not
    # stall the generator's record writes
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="rh-records-", dir=shm) as tmp:
        records_path = Path(tmp) / "records.jsonl"
        proc = LoadProcess(spec, records_path)
        await proc.start()
        measured = False
        try:
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(asyncio.to_thread(watcher.run_pods), name="watch-pods")
                    tg.create_task(asyncio.to_thread(watcher.run_endpoints), name="watch-endpoints")
                    await tg.create_task(control(), name="control")
                    watcher.stop()
            except* HarnessError as eg:
                watcher.stop()
                raise eg.exceptions[0] from None
            measured = True
        finally:
            if not measured:
                proc.kill()
        res = await proc.finish()
        acc = Accumulator()
        failures: list[RequestRecord] = []
        last_served: dict[str, float] = {}
        for rec in read_records(records_path):
            acc.add(rec)
            if rec.failed:
                failures.append(rec)
            elif rec.pod:
                last_served[rec.pod] = max(last_served.get(rec.pod, 0.0), rec.end)
        if opts.keep_records and opts.out:
            opts.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(records_path, opts.out / f"{cell.name}.records.jsonl")
    t0 = res.t0_wall
    summary = acc.summary()
    att = attribute(watcher.events, [(t0 + r.start, r.pod) for r in failures], {p: t0 + t for p, t in last_served.items()})
    unreliable = summary.lateness_p99_ms > opts.max_lateness * 1000
    reason = f"generator start-lateness p99 {summary.lateness_p99_ms:.1f} ms > {opts.max_lateness * 1000:.0f} ms" if unreliable else ""
    failures.sort(key=lambda r: r.sched)
    log.info(
        "[run] %s × %s: %d requests, %d failed %s, rollout %.1fs%s",
        cell.variant,
        cell.trigger.value,
        summary.requests,
        summary.failed,
        summary.by_kind or "",
        window["complete"] - window["trigger"],
        f" (UNRELIABLE: {reason})" if reason else "",
    )
    return run_json(
        summary,
        **cell.meta(opts.rate),
        unreliable=unreliable,
        unreliable_reason=reason,
        generator={
            "cpu_seconds": round(res.cpu_seconds, 3),
            "cpu_ms_per_1k": round(1e6 * res.cpu_seconds / max(res.sent, 1), 1),
            "wall_seconds": round(res.wall_seconds, 3),
        },
        rollout={
            "trigger_s": round(window["trigger"] - t0, 3),
            "complete_s": round(window["complete"] - t0, 3),
            "duration_s": round(window["complete"] - window["trigger"], 2),
            "events": [{"t": round(e.t - t0, 3), "source": e.source, "name": e.name, "state": e.state} for e in watcher.events],
        },
        attribution={
            "failures_by_pod_state": att.failures_by_state,
            "endpoint_lag_ms": att.endpoint_lag_ms,
            "max_endpoint_lag_ms": max(att.endpoint_lag_ms.values(), default=0.0),
            "pod_termination_s": att.pod_termination_s,
        },
        failure_samples=[asdict(r) for r in failures[:MAX_FAILURE_SAMPLES]],
    )


def _split(text: str | None, default: tuple[str, ...]) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else list(default)


def _cells(variants: list[str], triggers: list[str], modes: list[str], trials: int, root: Path | None) -> list[CellSpec]:
    known = available(root) if root else available()
    for v in variants:
        if v not in known:
            raise UsageError(f"unknown variant {v!r}; available: {', '.join(known)}")
    try:
        trig = [Trigger(t) for t in triggers]
    except ValueError:
        raise UsageError(f"unknown trigger in {triggers}; available: {', '.join(t.value for t in Trigger)}") from None
    try:
        mds = [ConnMode(m) for m in modes]
    except ValueError:
        raise UsageError(f"unknown mode in {modes}; available: new, keepalive") from None
    return [CellSpec(v, t, m, k) for k in range(1, trials + 1) for v in variants for t in trig for m in mds]


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        rate=args.rate,
        baseline=args.baseline,
        tail=args.tail,
        rollout_timeout=args.rollout_timeout,
        max_lateness=args.max_lateness,
        out=args.out,
        manifests=args.manifests,
        keep_records=args.keep_records,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )


async def connect(no_up: bool) -> Kube:
    kubeconfig = cluster.kubeconfig_path()
    if no_up:
        if not kubeconfig.exists():
            raise ClusterError(f"no kubeconfig at {kubeconfig}; run `rollout-harness up` first")
    else:
        await asyncio.to_thread(cluster.up)
    kube = Kube(kubeconfig)
    version = await asyncio.to_thread(kube.ping)
    log.info("[run] cluster API %s", version)
    for ns in await asyncio.to_thread(kube.managed_namespaces):  # leftovers of an interrupted earlier run
        await asyncio.to_thread(kube.delete_namespace, ns)
    return kube


async def run_matrix(kube: Kube, cells: list[CellSpec], opts: RunOptions) -> tuple[list[dict[str, Any]], float, float]:
    docs: list[dict[str, Any]] = []
    t0 = time.monotonic()
    measured = 0.0
    for i, cell in enumerate(cells, 1):
        log.info("[compare] cell %d/%d", i, len(cells))
        try:
            doc = await run_cell(kube, cell, opts)
        except RolloutError as e:
            if len(cells) == 1:
                raise
            log.warning("[compare] %s × %s: %s", cell.variant, cell.trigger.value, e)
            doc = run_json(
                summarize([]),
                **cell.meta(opts.rate),
                unreliable=False,
                error=str(e),
                generator={"wall_seconds": 0.0},
            )
        measured += doc["generator"]["wall_seconds"]
        docs.append(doc)
        if opts.out:
            write_json(opts.out / f"{doc['name']}.json", doc)
    return docs, time.monotonic() - t0, measured


async def run_command(args: argparse.Namespace) -> int:
    cells = _cells([args.variant], [args.trigger], [args.mode], 1, args.manifests)
    opts = _options(args)
    kube = await connect(args.no_up)
    try:
        docs, _, _ = await run_matrix(kube, cells, opts)
    finally:
        kube.close()
    print(compare_table(docs))
    return 0


async def compare_command(args: argparse.Namespace) -> int:
    cells = _cells(
        _split(args.variants, DEFAULT_VARIANTS),
        _split(args.triggers, DEFAULT_TRIGGERS),
        _split(args.modes, ("new",)),
        args.trials,
        args.manifests,
    )
    opts = _options(args)
    t0 = time.monotonic()
    kube = await connect(args.no_up)
    try:
        docs, _, measured = await run_matrix(kube, cells, opts)
    finally:
        kube.close()
    wall = time.monotonic() - t0
    print(compare_table(docs))
    print()
    print(
        f"{len(docs)} runs in {wall:.0f}s wall; {100 * (wall - measured) / wall:.0f}% of it outside the measured windows "
        f"(cluster check, deploy, wait, cleanup)"
    )
    return 0
