"""The matrix: cells run in order, `parallel` at a time, through a cell runner (harness.measure.CellRunner on a
cluster; anything with the same three methods in tests). With `ahead` (and parallel 1) the next cell is set up
during the current cell's tail. A cell (variant × trigger × mode) runs no more trials once they cannot change what
it will say (`enough`): with `certify`, after its first rollout that lost or once enough rollouts lost nothing; with
`stop_early`, after a trial that makes it lossy whatever follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from harness.classify import TIMER_KINDS
from harness.errors import RolloutError
from harness.model import CellSpec, ConnMode, Schedule, Status, Trigger
from harness.results import RunResult
from harness.verdict import counted_loss

log = logging.getLogger("harness.matrix")


class Pending(Protocol):
    """A cell's set-up started ahead of its turn."""

    def close(self) -> Coroutine[Any, Any, None]: ...


P = TypeVar("P", bound=Pending)


class Runner(Protocol[P]):
    def start(self, cell: CellSpec, label: str = "") -> P: ...

    def run(self, cell: CellSpec, set_up: P | None = None, on_tail: Callable[[], None] | None = None) -> Coroutine[Any, Any, RunResult]: ...

    def failed(self, cell: CellSpec, error: str) -> RunResult: ...


Progress = Callable[[int, int, CellSpec], None]

EARLY_STOP_LOST = 10
"""A used trial that lost at least this many requests of kinds a stalled or noisy client cannot produce (refused,
no_route, reset, idle_close, HTTP errors) makes its cell lossy whatever the other trials show."""


def enough(schedule: Schedule, trials: list[RunResult]) -> str:
    """Why a cell with these trials (last one last) needs no more ("" if it does)."""
    last = trials[-1]
    if schedule.certify is not None:
        if any((counted_loss(last) or {}).values()):  # excluded trials that lost count as losing rollouts
            return f"stopped after trial {last.trial}: this rollout lost requests (lossy, no certification)"
        zeros = sum(1 for r in trials if r.status is Status.USED and r.lost == 0)
        if zeros >= schedule.certify_rollouts:
            return f"certified after trial {last.trial}: {zeros} rollouts lost nothing"
        return ""
    return settled_lossy(last) if schedule.stop_early else ""


def settled_lossy(r: RunResult) -> str:
    """Why no further trial can change this cell's verdict ("" if one could)."""
    if r.status is not Status.USED:
        return ""
    real = sum(n for k, n in r.lost_by_kind.items() if k not in TIMER_KINDS)
    if real < EARLY_STOP_LOST:
        return ""
    return f"stopped after trial {r.trial}: lossy whatever follows ({real} refused/no-route/reset/idle-close/HTTP failures)"


async def run_matrix(
    runner: Runner[P], cells: list[CellSpec], schedule: Schedule, out: Path | None = None, progress: Progress | None = None
) -> list[RunResult]:
    """Run the cells; a rollout that fails becomes a `failed` result and the matrix goes on (a single cell
    re-raises, so `run` reports the error itself). Each result is written to `out` as it comes; the list comes back
    in the cells' order."""
    results: dict[int, RunResult] = {}
    trials: dict[tuple[str, Trigger, ConnMode], list[RunResult]] = {}
    settled: set[tuple[str, Trigger, ConnMode]] = set()
    todo = iter(enumerate(cells, 1))  # shared by the workers: each cell is taken once
    ahead = schedule.ahead and schedule.parallel == 1

    def needed(cell: CellSpec) -> bool:
        if (cell.variant, cell.trigger, cell.mode) not in settled:
            return True
        log.info("[compare] %s × %s (%s): trial %d not needed, verdict settled", cell.variant, cell.trigger, cell.mode, cell.trial)
        return False

    def take() -> tuple[int, CellSpec, P | None] | None:
        """The next cell still needed, not set up yet."""
        return next(((i, c, None) for i, c in todo if needed(c)), None)

    async def worker() -> None:
        upcoming = take()  # the next cell, with its set-up if that started during the tail of the cell before it

        def on_tail() -> None:
            nonlocal upcoming
            if ahead and (n := take()) is not None:
                upcoming = (n[0], n[1], runner.start(n[1], label="next cell: "))

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
                    result = await runner.run(cell, set_up, on_tail)
                except RolloutError as e:
                    if len(cells) == 1:
                        raise
                    log.warning("[compare] %s × %s: %s", cell.variant, cell.trigger, e)
                    result = runner.failed(cell, str(e))
                key = (cell.variant, cell.trigger, cell.mode)
                trials.setdefault(key, []).append(result)
                if cell.trial < schedule.trials and (why := enough(schedule, trials[key])):
                    result = replace(result, stopped=why)
                    settled.add(key)
                results[i] = result
                if out:
                    result.write(out / f"{result.name}.json")
                if upcoming is None:
                    upcoming = take()
        finally:
            if upcoming is not None and upcoming[2] is not None:
                await upcoming[2].close()

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
