"""Known-answer rollout tests on the real cluster. A harness that reports zero everywhere is blind: the lossy
configuration must lose requests, the best-practice one must lose none, in every trial, in both connection
modes, with no retry, and not blind (every trial `used`: no baseline failure, no stall, no blind zero)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import AT_ONCE, on_cluster

from harness.matrix import run_matrix
from harness.measure import CellRunner
from harness.model import CellSpec, ConnMode, Phase, RunOptions, Status, Trigger
from harness.results import RunResult

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
# every run's JSON is kept under results/e2e/ (gitignored) so a failure can be read afterwards
OUT = Path("results/e2e")
# two cells at a time, as `compare --parallel 2` runs them (tests/e2e/conftest.py: AT_ONCE, and why that is sound)
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, rollout_timeout=180, parallel=AT_ONCE)


def _why(r: RunResult) -> str:
    return f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} samples {[(f.start, f.kind) for f in r.failure_samples[:5]]}"


NAIVE = CellSpec("naive", Trigger.SET_IMAGE, ConnMode.NEW)
# best-practice × set-image × new connections: the 5 rollouts of test_certify.py, under the same assertions
BEST = [(Trigger.SET_IMAGE, ConnMode.KEEPALIVE), (Trigger.DRAIN, ConnMode.NEW), (Trigger.DRAIN, ConnMode.KEEPALIVE)]


@pytest.fixture(scope="module")
def results(kind_cluster: object) -> list[RunResult]:
    """Every cell of this module in one matrix, two at a time (a drain waits for no other here, and set-image trials
    go between the drains: two drains take turns at the node); best-practice's 3 trials per trigger and mode."""
    best = {(t, m): [CellSpec("best-practice", t, m, trial) for trial in (1, 2, 3)] for t, m in BEST}
    sk, dn, dk = best[BEST[0]], best[BEST[1]], best[BEST[2]]
    cells = [NAIVE, dn[0], sk[0], dk[0], sk[1], dn[1], sk[2], dk[1], dn[2], dk[2]]

    done = on_cluster(lambda target: run_matrix(CellRunner(target, OPTS), cells, OPTS.schedule))
    for r in done:
        r.write(OUT / f"{r.name}.json")
    return done


def test_naive_set_image_loses_requests(results: list[RunResult]) -> None:
    (r,) = [r for r in results if r.variant == "naive"]
    status, pct = r.status, r.phases[Phase.DISRUPTION].fail_pct
    assert status is Status.USED, _why(r)
    assert pct >= 3.0, _why(r)
    assert r.window is not None and r.window.trigger_s < r.window.complete_s <= r.window.old_pods_gone_s <= r.window.settled_s
    states = {e.state for e in r.events if e.source == "pod"}
    assert {"terminating", "ready", "deleted"} <= states, "the watcher must see pods come and go"


@pytest.mark.parametrize(("trigger", "mode"), BEST)
def test_best_practice_loses_nothing(results: list[RunResult], trigger: Trigger, mode: ConnMode) -> None:
    mine = [r for r in results if (r.variant, r.trigger, r.mode) == ("best-practice", trigger, mode)]
    assert len(mine) == 3 and all(r.provenance.options["parallel"] == AT_ONCE for r in mine), [r.name for r in mine]
    for r in mine:
        status, lost, sent = r.status, r.lost, r.window_sent  # plain values: short assertion messages
        assert sent > 500, _why(r)
        assert status is Status.USED, _why(r)
        assert lost == 0, _why(r)
        # endpoint_lag_ms lists the pods that left the ready endpoints and had served the load: without one, the
        # trigger removed only pods the load never reached and the zero proves nothing
        assert r.attribution is not None and r.attribution.endpoint_lag_ms, f"{r.name}: the load never reached a pod the trigger removed"
        # the window covers the whole disruption: the old pods were deleted before it closed
        terminated = [e for e in r.events if e.source == "pod" and e.state == "deleted"]
        assert r.window is not None and terminated and all(e.t <= r.window.settled_s for e in terminated), _why(r)
