"""Measure a cell that is set up (harness.cell): load ‖ watch ‖ [baseline, trigger until complete, until settled,
tail] -> records -> analyse -> one RunResult (and, with an output directory, its picture and records).

CellRunner is what the matrix (harness.matrix) runs cells through: set-up and measurement on one Target.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness import actions, clientpod, plot, progress
from harness.analysis import analyse
from harness.cell import Prepared, SetUp, base_result
from harness.errors import HarnessError
from harness.model import CellSpec, Event, RunOptions, Status
from harness.records import read_records
from harness.results import GeneratorStats, RunResult, Window
from harness.target import Target

log = logging.getLogger("harness.measure")


@dataclass(frozen=True)
class CellRunner:
    """Runs cells on one target with one set of options."""

    target: Target
    opts: RunOptions

    def start(self, cell: CellSpec, label: str = "") -> SetUp:
        """Start the cell's set-up as a task (e.g. during the tail of the cell before it)."""
        return SetUp.start(self.target, cell, self.opts, label)

    async def run(self, cell: CellSpec, set_up: SetUp | None = None, on_tail: Callable[[], None] | None = None) -> RunResult:
        """Set the cell up (or take the set-up started ahead for it), measure it, release everything it made.
        on_tail: called when the cell's tail starts (its old pods gone)."""
        turn = time.monotonic()
        s = set_up or self.start(cell)  # started now: none of it is ahead
        try:
            return await measure(cell, self.opts, await s.prepared(turn), on_tail)
        finally:
            await s.close()

    def failed(self, cell: CellSpec, error: str) -> RunResult:
        """The result of a cell whose rollout failed: nothing measured."""
        return base_result(cell, self.opts, self.target, Status.FAILED, error)


async def run_cell(target: Target, cell: CellSpec, opts: RunOptions) -> RunResult:
    """Set one cell up, measure it and release everything it made."""
    return await CellRunner(target, opts).run(cell)


async def measure(cell: CellSpec, opts: RunOptions, p: Prepared, on_tail: Callable[[], None] | None) -> RunResult:
    ctx, watcher, launch, proc, records_path = p.ctx, p.watcher, p.launch, p.proc, p.records_path
    marks: dict[str, float] = {}
    dns_keep = 0.0

    async def control() -> None:
        progress.phase("baseline load")
        await asyncio.sleep(opts.timing.baseline)
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
        await asyncio.sleep(dns_keep + opts.timing.tail)  # a DNS client may hold a gone pod's address for dns_keep s
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
        sent=res.sent,
        records=0,  # analyse counts them
        cpu_seconds=round(res.cpu_seconds, 3),
        cpu_ms_per_1k=round(res.cpu_ms_per_1k, 1),
        wall_seconds=round(res.wall_seconds, 3),
        scheduling=started.scheduling,
        max_in_flight=started.max_in_flight,
    )
    records = list(read_records(records_path))
    result = analyse(p.base, records, window, events, opts.traffic.rate, opts.thresholds, gen)
    out = opts.output.out
    if opts.output.pictures and out and plot.available():
        plot.run_png(result, records, out / f"{cell.name}.png")
    if opts.output.keep_records and out:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(records_path, out / f"{cell.name}.records.jsonl")
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
