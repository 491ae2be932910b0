"""The matrix scheduler through its public seam (harness.matrix.run_matrix with a cell runner): trials that cannot
change a verdict are skipped, cells overlap as asked, the next cell is set up during the tail and every set-up is
released once. Accounting only: the runner is a fake at the boundary (no cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from test_analysis import records, run

from harness import measure, plot
from harness.cell import Prepared, SetUp
from harness.errors import ClusterError, RolloutError
from harness.matrix import enough, run_matrix
from harness.model import CellSpec, ConnMode, Output, Schedule, Status, Trigger
from harness.records import SKIPPED
from harness.results import RunResult, load_results
from harness.verdict import Verdict, fold

NAIVE = {400 + i: "refused" for i in range(30)}


@dataclass
class FakeSetUp:
    task: asyncio.Task[RunResult]
    name: str
    events: list[tuple[str, str]]

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        self.events.append(("released", self.name))


class FakeRunner:
    """Set-ups take `setup` s; a measurement calls on_tail after 10 ms, then runs a tail of `tail` s."""

    def __init__(self, outcome: dict[str, dict[int, str]], setup: float = 0.02, tail: float = 0.05) -> None:
        self.outcome, self.setup, self.tail = outcome, setup, tail
        self.events: list[tuple[str, str]] = []
        self.in_flight = self.peak = 0
        self.batches: list[list[int]] = []
        self.stuck_trials: set[int] = set()
        self.clean_trials: set[int] = set()
        self.out: Path | None = None  # where the matrix saves the results: keep() sees whether each is there
        self.kept: list[tuple[str, bool]] = []

    def start(self, cell: CellSpec, label: str = "") -> FakeSetUp:
        self.events.append((f"set-up{' ahead' if label else ''}", cell.name))
        return FakeSetUp(asyncio.create_task(self._set_up(cell)), cell.name, self.events)

    async def _set_up(self, cell: CellSpec) -> RunResult:
        await asyncio.sleep(self.setup)
        return self.result(cell)

    def result(self, cell: CellSpec) -> RunResult:
        lost = self.outcome[cell.variant] if cell.trial not in self.clean_trials else {}
        return replace(run(records(lost)), name=cell.name, variant=cell.variant, trial=cell.trial)

    async def run(
        self, cells: list[CellSpec], set_up: FakeSetUp | None = None, on_tail: Callable[[], None] | None = None
    ) -> list[RunResult]:
        s = set_up or self.start(cells[0])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.batches.append([c.trial for c in cells])
        out: list[RunResult] = []
        try:
            base = await s.task
            for n, cell in enumerate(cells):
                self.events.append(("measure", cell.name))
                await asyncio.sleep(0.01)
                if on_tail is not None and n == len(cells) - 1:
                    on_tail()
                await asyncio.sleep(self.tail)
                if cell.variant == "broken":
                    raise ClusterError("the API server went away")
                if cell.variant == "stuck" or cell.trial in self.stuck_trials:
                    if n == 0:
                        raise RolloutError("rollout did not complete")
                    return [*out, self.failed(cell, "rollout did not complete")]
                self.events.append(("measured", cell.name))
                out.append(self.result(cell) if n else base)
            return out
        finally:
            self.in_flight -= 1
            await s.close()

    def failed(self, cell: CellSpec, error: str) -> RunResult:
        return replace(run(records()), name=cell.name, variant=cell.variant, trial=cell.trial, status=Status.FAILED, error=error)

    def keep(self, result: RunResult) -> None:
        self.kept.append((result.name, self.out is not None and (self.out / f"{result.name}.json").is_file()))


def cells(variants: tuple[str, ...], trials: int, trials_outer: bool = True) -> list[CellSpec]:
    if trials_outer:
        return [CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW, t) for t in range(1, trials + 1) for v in variants]
    return [CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW, t) for v in variants for t in range(1, trials + 1)]


async def test_stop_early_skips_trials_that_cannot_change_a_lossy_verdict() -> None:
    """naive's first trial loses 30 refused, so its trials 2 and 3 are not run and the cell says why; best-practice
    loses nothing and runs all three; a trial with only timeouts never settles a cell."""
    runner = FakeRunner({"naive": NAIVE, "best-practice": {}, "readiness": {400: "connect_timeout"}}, tail=0.0)
    matrix = cells(("naive", "best-practice", "readiness"), 3)
    results = await run_matrix(runner, matrix, Schedule(trials=3, stop_early=True, ahead=False))
    measured = [name.split("__")[0] for what, name in runner.events if what == "measured"]
    assert measured.count("naive") == 1 and measured.count("best-practice") == 3 and measured.count("readiness") == 3
    naive = fold([r for r in results if r.variant == "naive"])
    assert naive.verdict is Verdict.LOSSY and naive.trials == 1
    assert any("stopped after trial 1: lossy whatever follows (30 failures other than timeouts" in n for n in naive.notes)
    assert len(await run_matrix(FakeRunner(runner.outcome, tail=0.0), matrix, Schedule(trials=3))) == 9


async def test_parallel_cells_overlap_and_come_back_in_order() -> None:
    """With parallel=2 two cells are in flight at once, never more; results come back in the cells' order; a failed
    rollout becomes a failed result; any other error in one worker surfaces as itself."""
    runner = FakeRunner({"slow": {}, "a": {}, "b": {}, "stuck": {}, "broken": {}}, tail=0.01)
    matrix = cells(("slow", "a", "b", "stuck"), 2)
    results = await run_matrix(runner, matrix, Schedule(parallel=2))
    assert runner.peak == 2 and [r.name for r in results] == [c.name for c in matrix]
    assert [r.status for r in results if r.variant == "stuck"] == [Status.FAILED, Status.FAILED]
    with pytest.raises(ClusterError, match="went away"):
        await run_matrix(runner, [*matrix, CellSpec("broken", Trigger.SET_IMAGE, ConnMode.NEW, 1)], Schedule(parallel=3))


async def test_a_single_failed_rollout_is_raised() -> None:
    with pytest.raises(RolloutError, match="did not complete"):
        await run_matrix(FakeRunner({"stuck": {}}), cells(("stuck",), 1), Schedule())


async def test_the_next_cell_is_set_up_during_the_tail_and_released_when_not_needed() -> None:
    """The next cell's set-up starts when the current cell's tail does; a trial made unnecessary by the cell measured
    meanwhile (stop_early) is released unmeasured; every set-up is released once, also when a measurement fails.
    With ahead off, no set-up overlaps a measurement."""
    runner = FakeRunner({"naive": NAIVE, "best": {}, "broken": {}})
    matrix = cells(("naive", "best"), 2, trials_outer=False)
    n1, n2, b1, b2 = (c.name for c in matrix)
    results = await run_matrix(runner, matrix, Schedule(trials=2, stop_early=True))
    assert runner.events == [
        ("set-up", n1), ("measure", n1), ("set-up ahead", n2), ("measured", n1), ("released", n1),
        ("released", n2),  # naive's first trial settled it: its second trial, set up meanwhile, is not measured
        ("set-up", b1), ("measure", b1), ("set-up ahead", b2), ("measured", b1), ("released", b1),
        ("measure", b2), ("measured", b2), ("released", b2),
    ]  # fmt: skip
    assert [r.name for r in results] == [n1, b1, b2]

    runner.events.clear()
    await run_matrix(runner, matrix, Schedule(trials=2, ahead=False))
    assert [e for e in runner.events if e[0].startswith("set-up")] == [("set-up", c.name) for c in matrix]
    assert runner.events.count(("released", b2)) == 1

    runner.events.clear()
    with pytest.raises(ClusterError, match="went away"):
        await run_matrix(runner, [CellSpec("broken", Trigger.SET_IMAGE, ConnMode.NEW), *matrix], Schedule(trials=2))
    assert [e for e in runner.events if e[0] == "released"] == [("released", "broken__set-image__new__t1"), ("released", n1)]


async def test_a_set_up_says_how_much_of_it_was_hidden_before_its_turn() -> None:
    """setup_ahead_s: the part of setup_s spent before the cell's turn came (during the tail of the cell before)."""

    async def prepared(setup_s: float) -> Prepared:
        return Prepared(None, None, None, None, None, replace(run(records()), setup_s=setup_s))  # type: ignore[arg-type]

    now = time.monotonic()
    for setup_s, started, ahead in ((2.0, now - 0.5, 0.5), (0.3, now - 5.0, 0.3), (1.0, now + 1.0, 0.0)):
        s = SetUp(contextlib.AsyncExitStack(), asyncio.create_task(prepared(setup_s)), started)
        assert (await s.prepared(now)).base.setup_ahead_s == pytest.approx(ahead, abs=0.01)
        await s.close()


async def test_certification_rolls_until_the_claim_or_the_first_loss() -> None:
    """certify 50 %: 5 rollouts must lose nothing (1 - 0.05^(1/5) = 45 %). naive loses on its first rollout and stops
    there; best-practice stops after its 5th zero; a unreliable trial with only timeouts is no evidence (it does not
    count, the cell rolls once more); one whose window holds a refusal is a losing rollout."""
    outcome = {"naive": NAIVE, "best-practice": {}}
    runner = FakeRunner(outcome, tail=0.0)
    schedule = Schedule(trials=8, certify=0.5)
    assert schedule.certify_rollouts == 5
    results = await run_matrix(runner, cells(("naive", "best-practice"), 8), schedule)
    assert [r.trial for r in results if r.variant == "naive"] == [1]
    assert [r.trial for r in results if r.variant == "best-practice"] == [1, 2, 3, 4, 5]
    assert results[0].stopped.startswith("stopped after trial 1: this rollout lost") and "certified after trial 5" in results[-1].stopped

    blind_timeouts = replace(run(records({445: "connect_timeout", 446: SKIPPED})), trial=2)  # a skipped request: unreliable
    blind_refused = replace(run(records({445: "refused", 446: SKIPPED})), trial=2)
    assert blind_timeouts.status is Status.UNRELIABLE and blind_refused.status is Status.UNRELIABLE
    zero = run(records())
    assert not enough(schedule, [zero, blind_timeouts, zero, zero, zero])
    assert enough(schedule, [zero, blind_timeouts, zero, zero, zero, zero]).startswith("certified after trial 1: 5 rollouts")
    assert "lost requests" in enough(schedule, [zero, blind_refused])


async def test_a_series_rolls_trials_t_to_2t_minus_1_on_one_set_up() -> None:
    """With series, trials t..2t-1 share a set-up, and certification asks for no more than it needs: best-practice goes
    1 | 2-3 | 4-5 (5 zeros for 50 %); naive (lossy from its second trial) stops at the end of the batch that lost; drain
    never goes in a series; a rollout that fails mid-series ends the series, the trials after it go back to the queue."""
    runner = FakeRunner({"best-practice": {}, "naive": NAIVE}, setup=0.0, tail=0.0)
    runner.clean_trials = {1}  # naive's first rollout loses nothing
    results = await run_matrix(runner, cells(("best-practice", "naive"), 8), Schedule(trials=8, series=True, certify=0.5))
    assert runner.batches == [[1], [1], [2, 3], [2, 3], [4, 5]]
    assert [r.trial for r in results if r.variant == "naive"] == [1, 2, 3]
    assert [r.trial for r in results if r.variant == "best-practice"] == [1, 2, 3, 4, 5]
    assert "certified after trial 5" in next(r.stopped for r in results if r.variant == "best-practice" and r.stopped)

    runner = FakeRunner({"best-practice": {}}, setup=0.0, tail=0.0)  # the next batch is set up during this one's tail,
    await run_matrix(runner, cells(("best-practice",), 8), Schedule(trials=8, series=True, certify=0.5))
    assert runner.batches == [[1], [2, 3], [4, 5]]  # before the batch's results count: they are taken to lose nothing

    drains = [CellSpec("best-practice", Trigger.DRAIN, ConnMode.NEW, t) for t in (1, 2, 3)]
    runner = FakeRunner({"best-practice": {}}, setup=0.0, tail=0.0)
    await run_matrix(runner, drains, Schedule(trials=3, series=True))
    assert runner.batches == [[1], [2], [3]]

    runner = FakeRunner({"best-practice": {}}, setup=0.0, tail=0.0)
    runner.stuck_trials = {5}
    results = await run_matrix(runner, cells(("best-practice",), 7), Schedule(trials=7, series=True))
    assert runner.batches == [[1], [2, 3], [4, 5, 6, 7], [6, 7]]
    assert [(r.trial, r.status) for r in results] == [(t, Status.FAILED if t == 5 else Status.USED) for t in range(1, 8)]


async def test_each_result_is_saved_before_it_is_kept(tmp_path: Path) -> None:
    """The matrix writes a result's JSON, then asks the runner to keep what goes beside it (picture, records): a
    failed cell too."""
    runner = FakeRunner({"naive": NAIVE, "stuck": {}}, setup=0.0, tail=0.0)
    runner.out = tmp_path
    results = await run_matrix(runner, cells(("naive", "stuck"), 2), Schedule(trials=2, ahead=False), tmp_path)
    assert [r.status for r in results] == [Status.USED, Status.FAILED] * 2
    assert sorted(runner.kept) == sorted((r.name, True) for r in results)


class KeepingRunner(FakeRunner):
    """Keeps each result as harness.measure.CellRunner does (measure.keepsakes), with the records it came from."""

    def __init__(self, outcome: dict[str, dict[int, str]], output: Output) -> None:
        super().__init__(outcome, setup=0.0, tail=0.0)
        self.output = output

    def keep(self, result: RunResult) -> None:
        measure.keepsakes(result, records(self.outcome[result.variant]), self.output, records_too=True)


async def test_a_picture_that_fails_costs_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A picture that cannot be drawn (here: the disk is full) is a warning: every result is saved, whole, with its
    records, and the matrix goes on."""

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plot, "available", lambda: True)
    monkeypatch.setattr(plot, "run_png", full_disk)
    runner = KeepingRunner({"naive": NAIVE, "best-practice": {}}, Output(tmp_path, keep_records=True))
    results = await run_matrix(runner, cells(("naive", "best-practice"), 2), Schedule(trials=2), tmp_path)
    assert sorted(r.name for r in load_results(tmp_path)) == sorted(r.name for r in results) and len(results) == 4
    assert sorted(p.name for p in tmp_path.glob("*.records.jsonl")) == sorted(f"{r.name}.records.jsonl" for r in results)
    assert not list(tmp_path.glob("*.png"))
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 4 and all(m.endswith(".png not drawn: OSError: [Errno 28] No space left on device") for m in said), said
