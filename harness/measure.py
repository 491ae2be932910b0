"""Measure a cell that is set up (harness.cell): load ‖ watch ‖ [baseline, trigger until complete, until settled,
tail] -> records -> analyse -> one RunResult; with an output directory, once the matrix saved it, its picture and
records beside it (keepsakes).

CellRunner is what the matrix (harness.matrix) runs cells through: set-up and measurement on one Target.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from harness import actions, clientpod, plot, progress
from harness.analysis import analyse
from harness.cell import Prepared, SetUp, base_result
from harness.errors import EnvironmentProblem, HarnessError, RolloutError
from harness.files import write_atomic
from harness.model import CellSpec, Event, Output, RunOptions, Status
from harness.records import RequestRecord, read_records, to_json
from harness.results import GeneratorStats, RunResult, Window
from harness.target import Target

log = logging.getLogger("harness.measure")


@dataclass(frozen=True)
class CellRunner:
    """Runs cells on one target with one set of options."""

    target: Target
    opts: RunOptions
    _kept: dict[str, tuple[list[RequestRecord], bool]] = field(default_factory=dict, init=False, repr=False, compare=False)
    """With an output directory, per result measured and not kept yet: the records of its set-up, and whether it is
    the set-up's first rollout (its records file is named after it)."""

    def start(self, cell: CellSpec, label: str = "") -> SetUp:
        """Start the cell's set-up as a task (e.g. during the tail of the cell before it)."""
        return SetUp.start(self.target, cell, self.opts, label)

    async def run(self, cells: list[CellSpec], set_up: SetUp | None = None, on_tail: Callable[[], None] | None = None) -> list[RunResult]:
        """Set the first cell up (or take the set-up started ahead for it), roll each cell in turn on it (a series:
        consecutive trials of one variant × trigger × mode), release everything it made. Returns a result per cell
        rolled, in order: fewer than given when a rollout failed (its result is `failed`; the rest were not rolled),
        unless the first one failed, which raises. on_tail: called when the last rollout's tail starts."""
        turn = time.monotonic()
        s = set_up or self.start(cells[0])  # started now: none of it is ahead
        try:
            results, records = await measure(cells, self.opts, await s.prepared(turn), on_tail)
        finally:
            await s.close()
        o = self.opts.output
        if o.out is not None and (o.pictures or o.keep_records):
            self._kept.update((r.name, (records, n == 0)) for n, r in enumerate(results))
        return results

    def keep(self, result: RunResult) -> None:
        """Once the result is saved: its picture and records beside it (keepsakes)."""
        if (kept := self._kept.pop(result.name, None)) is not None:
            keepsakes(result, kept[0], self.opts.output, records_too=kept[1])

    def failed(self, cell: CellSpec, error: str) -> RunResult:
        """The result of a cell whose rollout failed: nothing measured."""
        return base_result(cell, self.opts, self.target, Status.FAILED, error)


async def run_cell(target: Target, cell: CellSpec, opts: RunOptions) -> RunResult:
    """Set one cell up, measure it and release everything it made."""
    runner = CellRunner(target, opts)
    (result,) = await runner.run([cell])
    runner.keep(result)  # with an output directory: the picture and records, not the JSON (the caller has the result)
    return result


async def measure(
    cells: list[CellSpec], opts: RunOptions, p: Prepared, on_tail: Callable[[], None] | None
) -> tuple[list[RunResult], list[RequestRecord]]:
    """Baseline, then each cell's rollout (trigger, complete, old pods gone and settled, tail) in turn; each tail is
    the next rollout's baseline. The n-th rollout of a series goes back where the one before came from
    (actions.nth_rollout). Returns a result per rollout, and the records of them all."""
    ctx, watcher, launch, proc, records_path = p.ctx, p.watcher, p.launch, p.proc, p.records_path
    marks: list[dict[str, float]] = []
    error: list[RolloutError] = []
    dns_keep = 0.0

    async def rollout(n: int, cell: CellSpec) -> None:
        m: dict[str, float] = {}
        c = actions.nth_rollout(ctx, n)
        async with actions.exclusive(cell.trigger, c):  # a wait here lengthens the baseline, not the window
            progress.phase(cell.trigger.value if len(cells) == 1 else f"{cell.trigger.value} {n + 1}/{len(cells)}")
            m["trigger"] = time.monotonic()
            await actions.fire(cell.trigger, c)
            m["complete"] = time.monotonic()
        c.mark("complete", f"{cell.trigger.value}: rollout complete")
        progress.phase("waiting for old pods to go")
        m["gone"] = await actions.wait_settled(c, cell.trigger.value)
        m["settled"] = time.monotonic()
        c.mark("settled", "old pods gone, endpoints settled")
        if len(cells) > 1:  # the series' results come at its end: say how it goes meanwhile
            log.info(
                "[run] %s × %s: rollout %d/%d of the series settled %.1fs after its trigger",
                cell.variant,
                cell.trigger.value,
                n + 1,
                len(cells),
                m["settled"] - m["trigger"],
            )
        progress.phase("tail load")
        if on_tail is not None and n == len(cells) - 1:
            on_tail()
        await asyncio.sleep(dns_keep + opts.timing.tail)  # a DNS or registry client may call a gone pod for dns_keep s
        m["end"] = time.monotonic()
        marks.append(m)

    async def control() -> None:
        progress.phase("baseline load")
        await asyncio.sleep(opts.timing.baseline)
        for n, cell in enumerate(cells):
            try:
                await rollout(n, cell)
            except RolloutError as e:
                if n == 0:
                    raise
                error.append(e)  # the rollouts before it stand; the series ends here
                return

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
    results = []
    start = 0.0
    for n, (cell, m) in enumerate(zip(cells, marks, strict=False)):
        at = {k: round(v - t0, 3) for k, v in m.items()}
        window = Window(at["trigger"], at["complete"], at["gone"], at["settled"], at["end"], start_s=start)
        series = f"rolled on the set-up of {cells[0].name} (series)"
        base = p.base if n == 0 else replace(p.base, name=cell.name, trial=cell.trial, setup_s=0.0, setup_ahead_s=0.0, overlap=series)
        results.append(_analysed(cell, opts, base, records, window, events, gen))
        start = window.settled_s
    if error:
        cell = cells[len(marks)]
        results.append(replace(p.base, name=cell.name, trial=cell.trial, status=Status.FAILED, error=str(error[0])))
    return results, records


def _analysed(
    cell: CellSpec,
    opts: RunOptions,
    base: RunResult,
    records: list[RequestRecord],
    window: Window,
    events: list[Event],
    gen: GeneratorStats,
) -> RunResult:
    result = analyse(base, records, window, events, opts.traffic.rate, opts.thresholds, gen)
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


def keepsakes(result: RunResult, records: list[RequestRecord], output: Output, records_too: bool) -> None:
    """Beside a result saved in output.out: its picture (with output.pictures and the plot extra), and with
    output.keep_records and `records_too`, the records of its set-up (a series': every rollout's). Best effort: after
    the result is saved, a failure here is a warning."""
    out = output.out
    if out is None:
        return
    if records_too and output.keep_records:
        try:
            write_atomic(out / f"{result.name}.records.jsonl", (f"{to_json(r)}\n" for r in records))
        except EnvironmentProblem as e:
            log.warning("records not kept: %s", e)
    w = result.window
    if output.pictures and w is not None and plot.available():
        shown = [r for r in records if w.start_s <= r.start < w.end_s]
        path = out / f"{result.name}.png"
        plot.best_effort(path, lambda: plot.run_png(result, shown, path))
