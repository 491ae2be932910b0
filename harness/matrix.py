"""The matrix: cells run in order, `parallel` at a time, through a cell runner (harness.measure.CellRunner on a
cluster; anything with the same four methods in tests). With `ahead` (and parallel 1) the next cell is set up
during the current cell's tail. A cell (variant × trigger × mode) runs no more trials once they cannot change what
it will say (`enough`): with `certify`, after its first rollout that lost or once enough rollouts lost nothing; with
`stop_early`, after a trial that makes it lossy whatever follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from harness.background import BACKGROUND_KINDS, Background
from harness.classify import TIMER_KINDS
from harness.errors import RolloutError
from harness.model import CellSpec, ConnMode, Schedule, Status, Trigger
from harness.results import RunResult
from harness.verdict import rollouts

log = logging.getLogger("harness.matrix")


class Pending(Protocol):
    """A cell's set-up started ahead of its turn."""

    def close(self) -> Coroutine[Any, Any, None]: ...


P = TypeVar("P", bound=Pending)


class Runner(Protocol[P]):
    def start(self, cell: CellSpec, label: str = "") -> P: ...

    def run(
        self, cells: list[CellSpec], set_up: P | None = None, on_tail: Callable[[], None] | None = None
    ) -> Coroutine[Any, Any, list[RunResult]]: ...

    def failed(self, cell: CellSpec, error: str) -> RunResult: ...

    def keep(self, result: RunResult) -> None:
        """Called once the result is saved: what goes beside it (a picture, records), best effort."""


Progress = Callable[[int, int, CellSpec], None]

EARLY_STOP_LOST = 10
"""A used trial that lost at least this many requests of kinds a stalled or noisy client cannot produce (refused,
no_route, reset, idle_close, HTTP errors) makes its cell lossy whatever the other trials show."""


def enough(schedule: Schedule, trials: list[RunResult]) -> str:
    """Why a cell with these trials (last one last) needs no more ("" if it does). Rollouts are counted, and judged
    against the background of the trials so far, as the verdict does (harness.verdict.rollouts)."""
    last = trials[-1]
    if schedule.certify is not None:
        each = rollouts(trials)
        losing = [r.trial for r, c in zip(trials, each, strict=True) if c is not None and c.lost]  # excluded ones too
        if losing:  # an earlier one only when a tighter background bound put it beyond
            which = "this rollout" if losing[-1] == last.trial else f"rollout {losing[-1]}"
            return f"stopped after trial {last.trial}: {which} lost requests (lossy, no certification)"
        zeros = sum(1 for c in each if c is not None and not c.lost)
        if zeros >= schedule.certify_rollouts:
            return f"certified after trial {last.trial}: {zeros} rollouts lost nothing"
        return ""
    return settled_lossy(last, Background.of(trials)) if schedule.stop_early else ""


def settled_lossy(r: RunResult, background: Background) -> str:
    """Why no further trial can change this cell's verdict ("" if one could). With a background, HTTP errors do not
    settle it: later baselines may show a background that explains them."""
    if r.status is not Status.USED:
        return ""
    settles = TIMER_KINDS | (BACKGROUND_KINDS if background.upper is not None else frozenset())
    real = sum(n for k, n in r.lost_by_kind.items() if k not in settles)
    if real < EARLY_STOP_LOST:
        return ""
    return f"stopped after trial {r.trial}: lossy whatever follows ({real} failures other than timeouts)"


def batch_size(schedule: Schedule, cell: CellSpec, before: list[RunResult], rolling: int = 0) -> int:
    """How many trials, from this one on, roll on one set-up: 1, or with series (repeatable triggers) trials t..2t-1,
    and no more than a certification still needs after the trials `before` it and the `rolling` ones still measured
    (a set-up made during a tail is made before they are counted; they are taken to lose nothing)."""
    if not (schedule.series and cell.trigger.repeatable):
        return 1
    if schedule.certify is None:
        return cell.trial
    zeros = sum(1 for r in before if r.status is Status.USED and r.lost == 0)
    return max(1, min(cell.trial, schedule.certify_rollouts - zeros - rolling))


async def run_matrix(
    runner: Runner[P], cells: list[CellSpec], schedule: Schedule, out: Path | None = None, progress: Progress | None = None
) -> list[RunResult]:
    """Run the cells; a rollout that fails becomes a `failed` result and the matrix goes on (a single cell
    re-raises, so `run` reports the error itself). Each result is written to `out` as it comes, then kept
    (runner.keep: its picture, records); the list comes back in the cells' order. With series, a batch of one
    cell's trials rolls on one set-up (batch_size)."""
    results: dict[int, RunResult] = {}
    trials: dict[tuple[str, Trigger, ConnMode], list[RunResult]] = {}
    settled: set[tuple[str, Trigger, ConnMode]] = set()
    rolling: Counter[tuple[str, Trigger, ConnMode]] = Counter()  # trials being measured now, per cell
    ahead_of: dict[int, str] = {}  # a batch's first index -> the cell during whose tail it was set up
    queue = list(enumerate(cells, 1))  # shared by the workers: each cell is taken once (or put back, not rolled)
    ahead = schedule.ahead and schedule.parallel == 1

    def key(cell: CellSpec) -> tuple[str, Trigger, ConnMode]:
        return (cell.variant, cell.trigger, cell.mode)

    def needed(cell: CellSpec) -> bool:
        if key(cell) not in settled:
            return True
        log.info("[compare] %s × %s (%s): trial %d not needed, verdict settled", cell.variant, cell.trigger, cell.mode, cell.trial)
        return False

    def take() -> tuple[list[tuple[int, CellSpec]], P | None] | None:
        """The next cells still needed, not set up yet: the first one and, with series, its next trials."""
        while queue:
            i, first = queue.pop(0)
            if not needed(first):
                continue
            batch = [(i, first)]
            size = batch_size(schedule, first, trials.get(key(first), []), rolling[key(first)])
            for entry in [e for e in queue if key(e[1]) == key(first)][: size - 1]:
                queue.remove(entry)
                batch.append(entry)
            return batch, None
        return None

    async def worker() -> None:
        upcoming = take()  # the next cells, with their set-up if that started during the tail of the batch before
        current = ""  # the last cell of the batch being measured

        def on_tail() -> None:
            nonlocal upcoming
            if ahead and (n := take()) is not None:
                upcoming = (n[0], runner.start(n[0][0][1], label="next cell: "))
                ahead_of[n[0][0][0]] = current

        try:
            while upcoming is not None:
                (batch, set_up), upcoming = upcoming, None
                batch = [(i, c) for i, c in batch if needed(c)]  # some may be settled by the batch measured meanwhile
                if not batch:
                    if set_up is not None:
                        await set_up.close()
                    upcoming = take()
                    continue
                i, cell = batch[0]
                current = batch[-1][1].name
                if progress is not None:
                    progress(i, len(cells), cell)
                try:
                    rolling[key(cell)] += len(batch)
                    done = await runner.run([c for _, c in batch], set_up, on_tail)
                except RolloutError as e:
                    if len(cells) == 1:
                        raise
                    log.warning("[compare] %s × %s: %s", cell.variant, cell.trigger, e)
                    done = [runner.failed(cell, str(e))]
                finally:
                    rolling[key(cell)] -= len(batch)
                queue[:0] = batch[len(done) :]  # not rolled: a rollout of the series failed before them
                for (i, cell), result in zip(batch, done, strict=False):
                    trials.setdefault(key(cell), []).append(result)
                    if key(cell) not in settled and cell.trial < schedule.trials and (why := enough(schedule, trials[key(cell)])):
                        result = replace(result, stopped=why)
                        settled.add(key(cell))
                    if i in ahead_of and set_up is not None:
                        result = replace(result, overlap=f"set up during the tail of {ahead_of[i]}")
                    results[i] = result
                    if out:
                        result.write(out / f"{result.name}.json")
                    runner.keep(result)  # after the JSON: a picture that fails never costs the result
                if upcoming is None:
                    upcoming = take()
        finally:
            if upcoming is not None and upcoming[1] is not None:
                await upcoming[1].close()

    workers = max(1, min(schedule.parallel, len(cells)))
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
