"""E2E fixtures: one session-scoped real kind cluster and a Target (API client, NodePort pool) per test; side_by_side,
which runs a module's cells two at a time.

Runs only with --with-e2e. The cluster is brought up (or reused) by harness.cluster.up() and deleted at the end
of the session unless --rollout-keep-cluster (the pytest plugin's flag, one for both families of fixtures; or
RH_KEEP_CLUSTER=1). If it cannot come up the tests fail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from harness import cluster
from harness.measure import run_cell
from harness.model import CellSpec, RunOptions, Status
from harness.results import RunResult
from harness.target import Target, connect

T = TypeVar("T")


def known_answer(r: RunResult, lossy: bool) -> None:
    """A used run that lost requests (lossy) or none, with the run's status, reasons, kinds and error when not."""
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED, why
    assert (r.lost > 0) if lossy else (r.lost == 0), why


AT_ONCE = 2
"""How many of a module's cells side_by_side runs at once: as `compare --parallel 2` runs them, which gave the same
verdicts, no false loss and no trial left out in 18 runs beside 18 serial ones (docs/findings.md, "Time to
verdict"), in 31 % less time. A lossy cell loses more beside another (2 cores): the known answers ask only that it
loses. Not for the client pod (its generator has no real-time priority here: test_given_cluster.py). The default
schedule (one at a time, each set up during the tail of the one before) is test_certify.py's."""


def on_cluster(work: Callable[[Target], Awaitable[T]]) -> T:
    """Run `work` on a Target of the harness's cluster (up already) in an event loop of its own, from a module
    fixture, and close the Target's API client after it."""

    async def run() -> T:
        target = await connect(no_up=True)
        try:
            return await work(target)
        finally:
            target.kube.close()

    return asyncio.run(run())


Results = dict[str, RunResult | BaseException]


def side_by_side(cells: Mapping[str, tuple[CellSpec, RunOptions]]) -> Results:
    """Each cell run (run_cell: its own namespace, NodePort, pods and generator) AT_ONCE at a time, in the given
    order, a new one starting as soon as one ends; by key, its result or what it raised (the test of that cell
    re-raises it: result())."""

    async def all_of_them(target: Target) -> Results:
        turn = asyncio.Semaphore(AT_ONCE)

        async def one(cell: CellSpec, opts: RunOptions) -> RunResult:
            async with turn:
                return await run_cell(target, cell, opts)

        done = await asyncio.gather(*(one(c, o) for c, o in cells.values()), return_exceptions=True)
        return dict(zip(cells, done, strict=True))

    return on_cluster(all_of_them)


def results_side_by_side(cells: Mapping[str, tuple[CellSpec, RunOptions]]) -> Any:
    """A module's `results` fixture: its cells run once, side_by_side, for the tests that each take one (result())."""

    @pytest.fixture(scope="module")
    def results(kind_cluster: cluster.ClusterInfo) -> Results:
        return side_by_side(cells)

    return results


def result(results: Results, key: str) -> RunResult:
    """One cell's result from side_by_side, or what its run raised, raised again."""
    r = results[key]
    if isinstance(r, BaseException):
        raise r
    return r


def keep_cluster(config: pytest.Config) -> bool:
    """Whether the session leaves the cluster running at its end."""
    return os.environ.get("RH_KEEP_CLUSTER") == "1" or bool(config.getoption("--rollout-keep-cluster"))


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[cluster.ClusterInfo]:
    info = cluster.up()
    try:
        yield info
    finally:
        if not keep_cluster(request.config):
            cluster.down()


@pytest.fixture
async def target(kind_cluster: cluster.ClusterInfo) -> AsyncIterator[Target]:
    t = await connect(no_up=True)
    try:
        yield t
    finally:
        t.kube.close()
