"""pytest plugin (entry point `pytest11: rollout_harness`, active once the package is installed): assert in your own
tests what a rollout loses.

    from harness.model import Status

    def test_best_practice_loses_nothing_on_set_image(rollout):
        result = rollout("best-practice", "set-image")
        assert result.status is Status.USED, result.reasons
        assert result.lost == 0, result.lost_by_kind

Fixtures:
- `rollout_cluster` (session): the harness's kind cluster, brought up (idempotent; cold ~15 min, warm ~1 min) unless
  `--rollout-no-up`. Deleted at the end only if this session created it, unless `--rollout-keep-cluster`. With
  `--rollout-kubeconfig`/`--rollout-context`, that cluster instead (never created or deleted; pass client="pod"; a
  drain there needs allow_disruption=True). Connecting undoes what killed runs left (harness.target).
- `rollout`: `rollout(variant, trigger="set-image", mode="new", trial=1, **options) -> RunResult` runs one measured
  trial (options: any `harness.model.RunOptions` setting, by name, e.g. rate=150, manifests=Path("my-variants")) and
  returns the typed result; `rollout.cell(variant, trigger, mode, trials=3, certify=None, **options) -> CellVerdict`
  rolls a cell's trials (or a certification: certify=0.1) and returns its verdict, as `compare` folds it.
  Synchronous: call them from plain or async test functions.
- `load_image`: `load_image("cart:ci-1", ...)` puts local docker images on the harness's kind cluster (as
  `rollout-harness load-image` does), so your workload can name images no registry holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from harness.model import CellSpec, ConnMode, RunOptions, Trigger, certify_trials

if TYPE_CHECKING:  # the Kubernetes client loads only once a fixture is used, not in every pytest run of the venv
    from harness.results import RunResult
    from harness.target import Target
    from harness.verdict import CellVerdict

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rollout-harness")
    group.addoption("--rollout-no-up", action="store_true", help="rollout fixtures: use the running cluster, never create one")
    group.addoption("--rollout-keep-cluster", action="store_true", help="rollout fixtures: never delete the cluster at the end")
    group.addoption("--rollout-kubeconfig", default=None, help="rollout fixtures: use this cluster (never created or deleted)")
    group.addoption("--rollout-context", default=None, help="rollout fixtures: kubeconfig context of the cluster to use")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when the caller is inside an event loop (async tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def rollout_cluster(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The cluster the rollout fixtures measure on (session): the harness's kind cluster, brought up unless
    --rollout-no-up and deleted at the end if this session created it (unless --rollout-keep-cluster); or the one
    --rollout-kubeconfig/--rollout-context names, never created or deleted. Connecting repairs what killed runs
    left."""
    kubeconfig, context = request.config.getoption("--rollout-kubeconfig"), request.config.getoption("--rollout-context")
    from harness import cluster
    from harness.target import connect

    given = kubeconfig is not None or context is not None
    no_up = given or bool(request.config.getoption("--rollout-no-up"))
    created = not no_up and not cluster.cluster_exists()
    target = _run(connect(no_up, Path(kubeconfig) if kubeconfig else None, context))
    try:
        yield target
    finally:
        target.kube.close()
        if created and not request.config.getoption("--rollout-keep-cluster"):
            cluster.down()


class Rollout:
    """What the `rollout` fixture gives: `rollout(...)` measures one trial; `rollout.cell(...)` a cell's trials, or a
    certification, folded into its verdict with the same statistics as `compare`."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def __call__(self, variant: str, trigger: str = "set-image", mode: str = "new", trial: int = 1, **options: Any) -> RunResult:
        from harness.measure import run_cell

        cell = CellSpec(variant, Trigger(trigger), ConnMode(mode), trial)
        return _run(run_cell(self.target, cell, RunOptions.of(**options)))

    def cell(
        self, variant: str, trigger: str = "set-image", mode: str = "new", *, trials: int = 3, certify: float | None = None, **options: Any
    ) -> CellVerdict:
        """Roll the cell `trials` times (with certify, e.g. 0.1: until P(a rollout loses) <= 10 % is shown or a rollout
        loses, at most its need + 20 %) and return its verdict: `.verdict`, `.rollouts`, `.rollouts_lost`,
        `.p_lose_upper`, `.why`, ... (harness.verdict.CellVerdict)."""
        from harness.matrix import run_matrix
        from harness.measure import CellRunner
        from harness.verdict import fold_cells

        if certify is not None:
            options |= {"certify": certify, "series": options.get("series", True)}
            trials = max(trials, certify_trials(certify))
        opts = RunOptions.of(trials=trials, **options).validate()
        cells = [CellSpec(variant, Trigger(trigger), ConnMode(mode), t) for t in range(1, trials + 1)]
        results = _run(run_matrix(CellRunner(self.target, opts), cells, opts.schedule, opts.output.out))
        (verdict,) = fold_cells(results)
        return verdict


@pytest.fixture
def rollout(rollout_cluster: Target) -> Rollout:
    """`rollout(variant, trigger="set-image", mode="new", trial=1, **options) -> RunResult`: one measured trial;
    `rollout.cell(variant, trigger, mode, trials=3, certify=None, **options) -> CellVerdict`: a cell's verdict."""
    return Rollout(rollout_cluster)


@pytest.fixture
def load_image(rollout_cluster: Target) -> Callable[..., None]:
    """`load_image(*images)`: put local docker images on the cluster the rollout fixtures use, as `rollout-harness
    load-image` does (an image docker lacks is a UsageError naming it). A cluster that is not kind (given with
    --rollout-kubeconfig/--rollout-context) pulls its images: push them to its registry instead (UsageError)."""

    def load(*images: str) -> None:
        from harness import userimages
        from harness.errors import UsageError

        if rollout_cluster.kind_name is None:
            raise UsageError("load_image: this cluster is not a kind cluster; push the images to a registry it pulls from")
        userimages.load(images, rollout_cluster.kind_name)

    return load
