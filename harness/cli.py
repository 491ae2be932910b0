"""rollout-harness command line: `up`, `down`, `load`, `run`, `compare`, `report`, `variants`.

Flags (their grammar: harness.cliargs) parse into options objects (defaults declared once, in the dataclasses),
then one library call.
main(argv) is the single exit point: results on stdout (or --out), diagnostics on stderr through the `harness`
logger (never the root logger: a program that calls main() keeps its logging as it was), any HarnessError as one
line with exit code 2, Ctrl-C as exit code 130 after cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from harness import progress
from harness.cliargs import DEFAULT_VARIANTS, build_parser
from harness.errors import HarnessError, UsageError
from harness.gate import EXIT_OVER_BUDGET, Budget
from harness.load import LoadSpec
from harness.manifests import load_workload, workload_name
from harness.model import (
    CellSpec,
    Client,
    ConnMode,
    Discovery,
    Output,
    RunOptions,
    Schedule,
    Subject,
    Thresholds,
    Timing,
    Traffic,
    Trigger,
    WorkloadKind,
)
from harness.results import RunResult

log = logging.getLogger("harness")


def _budget(args: argparse.Namespace) -> Budget:
    budget = Budget(args.max_failures, args.max_fail_pct)
    if getattr(args, "junit", None):
        _writable_dir(args.junit.absolute().parent)
    return budget


def _emit(results: list[RunResult], args: argparse.Namespace, budget: Budget, footer: str = "") -> int:
    """Print the cells in --format, write --junit, and return the gate's exit status."""
    from harness.report import LEGEND, cells_csv, cells_json, compare_table, junit_xml, settings_line
    from harness.verdict import fold_cells

    cells = fold_cells(results)
    over = [(c, why) for c in cells if (why := budget.breach(c))]
    if args.format == "json":
        print(cells_json(results, budget))
    elif args.format == "csv":
        print(cells_csv(results, budget), end="")
    else:
        print(settings_line(results), compare_table(results, budget), LEGEND, sep="\n\n")
        if footer:
            print(f"\n{footer}")
    if args.junit:
        args.junit.write_text(junit_xml(results, budget))
    if not budget.active:
        return 0
    for c, why in over:
        log.warning("over budget: %s × %s (%s): %s", c.variant, c.trigger, c.mode, why)
    if over:
        log.warning("budget (%s): %d of %d cells over", budget.describe(), len(over), len(cells))
    else:
        log.info("budget (%s): all %d cells within", budget.describe(), len(cells))
    return EXIT_OVER_BUDGET if over else 0


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _cells(variants: list[str], triggers: list[str], modes: list[str], trials: int) -> list[CellSpec]:
    """The matrix, trials outermost; the variants' names are checked when they load (RunOptions.variant)."""
    try:
        trig = [Trigger(t) for t in triggers]
    except ValueError:
        raise UsageError(f"unknown trigger in {triggers}; available: {', '.join(t.value for t in Trigger)}") from None
    try:
        mds = [ConnMode(m) for m in modes]
    except ValueError:
        raise UsageError(f"unknown mode in {modes}; available: {', '.join(m.value for m in ConnMode)}") from None
    return [CellSpec(v, t, m, k) for k in range(1, trials + 1) for v in variants for t in trig for m in mds]


def _writable_dir(path: Path) -> None:
    """Reject an --out that cannot be written before the run, not after it (results would be lost)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".rh-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {path}: cannot write there ({e.strerror})") from None


def _options(args: argparse.Namespace) -> RunOptions:
    discovery = Discovery(args.discovery)
    client = Client(args.client) if args.client else (Client.POD if discovery is Discovery.DNS else Client.HOST)
    return RunOptions(
        Traffic(
            args.rate,
            args.connect_timeout,
            args.read_timeout,
            args.connections,
            args.path,
            client,
            discovery,
            args.dns_cache,
            args.client_image,
        ),
        Timing(args.baseline, args.tail, args.rollout_timeout),
        Thresholds(args.max_lateness, args.max_gap),
        Schedule(args.trials, getattr(args, "stop_early", False), args.parallel, args.ahead),
        Subject(WorkloadKind(args.kind), args.manifests, args.workload, args.new_image, args.port),
        Output(args.out, args.keep_records, args.pictures),
    )


async def _matrix(args: argparse.Namespace) -> int:
    from harness.cell import cell_variant
    from harness.matrix import run_matrix
    from harness.measure import CellRunner
    from harness.target import connect

    opts = _options(args)
    chosen = args.variant if args.verb == "run" else args.variants
    workload = opts.subject.workload
    if workload is not None:  # the variants are overlays on it
        specs = [chosen or "as-is"] if args.verb == "run" else _split(chosen or "as-is")
        variants = [workload_name(workload, tuple(s.split("+"))) for s in specs]
    else:
        variants = [chosen or "naive"] if args.verb == "run" else _split(chosen or ",".join(DEFAULT_VARIANTS))
    modes = [args.mode] if args.verb == "run" else _split(args.modes)
    triggers = [args.trigger] if args.verb == "run" else _split(args.triggers)
    cells = _cells(variants, triggers, modes, args.trials)
    opts.validate(cells)
    for name in dict.fromkeys(variants):
        cell_variant(opts, name)  # every variant (or workload + overlays) loads and converts before any cluster work
    if opts.output.out:
        _writable_dir(opts.output.out)
    t0 = time.monotonic()

    def announce(i: int, n: int, cell: CellSpec) -> None:
        done = time.monotonic() - t0
        left = done / (i - 1) * (n - i + 1) if i > 1 else None
        eta = f", about {left / 60:.0f} min left" if left is not None else ""
        log.info("[compare] cell %d/%d: %s × %s (%s, trial %d)%s", i, n, cell.variant, cell.trigger.value, cell.mode.value, cell.trial, eta)
        if (line := progress.status()) is not None:
            line.cell(f"cell {i}/{n} {cell.variant} × {cell.trigger.value} ({cell.mode.value}, trial {cell.trial})", left)

    budget = _budget(args)
    target = await connect(args.no_up, args.kubeconfig, args.context)
    try:
        target.check(opts)
        results = await run_matrix(CellRunner(target, opts), cells, opts.schedule, opts.output.out, announce)
    finally:
        target.kube.close()
        if (line := progress.status()) is not None:
            line.close()  # the tables go to the same terminal
    wall = time.monotonic() - t0
    measured = sum(r.generator.wall_seconds for r in results if r.generator)
    setup = sum(r.setup_s - r.setup_ahead_s for r in results)  # what the next cell set up in a tail did not cost
    ahead = sum(r.setup_ahead_s for r in results)
    footer = f"{len(results)} runs in {wall:.0f}s wall; " + (
        f"{100 * (wall - measured) / wall:.0f}% of it outside the measured windows ({setup:.0f}s setting up: deploy, pods "
        f"ready, the Service answering{f' (and {ahead:.0f}s more during the tails before)' if ahead else ''}; "
        f"{max(0.0, wall - measured - setup):.0f}s the rest: load start and stop, analysis, cleanup)"
        if opts.schedule.parallel == 1
        else f"measured windows add up to {measured:.0f}s ({measured / wall:.2f} per wall second, {opts.schedule.parallel} cells at a time)"
    )
    out = opts.output.out
    if out and opts.output.pictures and len(results) > 1:
        from harness import plot

        if plot.available():
            plot.overview_png(results, out / "overview.png")
        else:
            log.info("pictures: install rollout-harness[plot] (matplotlib) for a PNG per run and an overview")
    return _emit(results, args, budget, footer)


async def _load(args: argparse.Namespace) -> int:
    from harness.load import run_load
    from harness.records import RecordWriter, RequestRecord
    from harness.report import summary_table, timeline_table
    from harness.summary import Accumulator

    spec = LoadSpec(
        url=args.url,
        rate=args.rate,
        duration=args.duration,
        mode=ConnMode(args.mode),
        max_requests=args.requests,
        max_in_flight=args.max_in_flight,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        connections=args.connections,
    )
    spec.validate()
    budget = Budget(args.max_failures, args.max_fail_pct)
    if args.out:
        _writable_dir(args.out.parent)
    acc = Accumulator()
    writer = RecordWriter(args.records)
    last = time.monotonic()
    done = 0

    def sink(rec: RequestRecord) -> None:
        nonlocal last, done
        acc.add(rec)
        writer.write(rec)
        done += 1
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            log.info("[load] %d/%d requests, %d failed", done, spec.total(), acc.failed)

    log.info("[load] %s: %d requests at %g/s (%s connections)", spec.url, spec.total(), spec.rate, spec.mode.value)
    try:
        result = await run_load(spec, sink)
    finally:
        writer.close()
    summary = acc.summary()
    print(summary_table(summary))
    if args.timeline:
        print()
        print(timeline_table(summary))
    if args.out:
        doc = {
            "schema": "rollout-harness/load@1",
            "url": spec.url,
            "mode": spec.mode.value,
            "rate": spec.rate,
            "generator": {"cpu_seconds": result.cpu_seconds, "cpu_ms_per_1k": result.cpu_ms_per_1k, "wall_seconds": result.wall_seconds},
            "summary": asdict(summary),
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if why := budget.exceeded(summary.failed, summary.failure_pct):
        log.warning("over budget (%s): %s", budget.describe(), why)
        return EXIT_OVER_BUDGET
    return 0


NOISY = ("kubernetes", "urllib3", "asyncio")
"""Loggers whose retries would bury the one-line error: errors only, unless -vv."""


def _levels(verbose: int, quiet: bool) -> dict[str, int]:
    """The log level of each logger main() writes to stderr."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    return {"harness": level} | dict.fromkeys(NOISY, logging.DEBUG if verbose > 1 else logging.ERROR)


async def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "load":
        return await _load(args)
    if args.verb == "client-image":
        from harness import clientpod

        print(await asyncio.to_thread(clientpod.image))
        return 0
    if args.verb == "variants":
        from tabulate import tabulate

        from harness.manifests import OVERLAYS, available, describe, load_variant

        if args.workload:  # overlays, each applied to the file (so a broken file or overlay shows here)
            rows = []
            for name in available(args.manifests, OVERLAYS):
                load_workload(args.workload, None, (name,), args.manifests)
                rows.append((name, describe(name, args.manifests, OVERLAYS)))
        else:
            rows = [(v.name, v.description) for v in (load_variant(n, args.manifests) for n in available(args.manifests))]
        print(tabulate(rows, headers=["overlay" if args.workload else "variant", "description"], tablefmt="github"))
        return 0
    if args.verb == "report":
        from harness.results import load_results

        budget = _budget(args)
        return _emit(load_results(args.dir), args, budget)
    if args.verb in ("up", "down"):
        from harness import cluster

        if args.verb == "down":
            await asyncio.to_thread(cluster.down)
            return 0
        from harness.netguard import DeadPodIP

        net = None
        if args.dead_pod_ip or args.icmp_ratelimit or args.proxy_mode:
            cur = await asyncio.to_thread(cluster.current_settings)
            net = cluster.NetSettings(
                DeadPodIP(args.dead_pod_ip) if args.dead_pod_ip else cur.dead_pod_ip,
                args.icmp_ratelimit == "off" if args.icmp_ratelimit else cur.icmp_ratelimit_off,
                cluster.ProxyMode(args.proxy_mode) if args.proxy_mode else cur.proxy_mode,
            )
        info = await asyncio.to_thread(cluster.up, args.offline, cluster.CLUSTER, 300, net)
        print(f"cluster {info.name} ready; kubeconfig {info.kubeconfig}")
        return 0
    return await _matrix(args)


class Terminated(Exception):
    """SIGTERM arrived: the run was cancelled as Ctrl-C cancels it, and cleaned up."""


async def _until_terminated(args: argparse.Namespace) -> int:
    """_dispatch, cancelled by SIGTERM the way asyncio cancels it on Ctrl-C, so the same cleanup runs (namespaces
    deleted, the load process and client pod stopped) whether a user or a CI runner stops it."""
    task = asyncio.current_task()
    assert task is not None
    terminated = False

    def on_term() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    # Signal handlers belong to the main thread; a caller running main() in a worker thread (asyncio.to_thread,
    # an embedding service) keeps its own SIGTERM handling.
    loop = asyncio.get_running_loop() if threading.current_thread() is threading.main_thread() else None
    if loop is not None:
        loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        return await _dispatch(args)
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise
    finally:
        if loop is not None:
            loop.remove_signal_handler(signal.SIGTERM)


def _error(e: HarnessError) -> int:
    print(f"rollout-harness: error: {e}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except HarnessError as e:
        return _error(e)
    with progress.logging_to(sys.stderr, _levels(args.verbose, args.quiet)):
        try:
            return asyncio.run(_until_terminated(args))
        except HarnessError as e:
            code = _error(e)
            if args.verbose:
                log.debug("detail", exc_info=True)
            return code
        except KeyboardInterrupt:
            print("rollout-harness: interrupted; cleaned up", file=sys.stderr)
            return 130
        except Terminated:
            print("rollout-harness: terminated; cleaned up", file=sys.stderr)
            return 143


if __name__ == "__main__":
    sys.exit(main())
