"""Your own workload (`--workload`): a Deployment whose names, labels, container name and ports all differ from the
probe app's is deployed into a fresh namespace and rolled with every trigger; set-image goes to --new-image.
It is built like best-practice (readiness, preStop, graceful drain, maxUnavailable 0, PDB), so set-image and
drain, the known answers, lose nothing; every trigger must complete with a used (not blind) run that removed pods."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from e2e.conftest import Results, result, results_side_by_side

from harness.cli import main
from harness.gate import EXIT_OVER_BUDGET
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
SHOP = Path(__file__).parents[1] / "examples" / "shop-api.yaml"
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, workload=SHOP, new_image="rollout-harness/probe-app:v2", port=8000)


# node-down: test_node_down.py; hpa-scale-in needs an autoscaler among the objects, which shop-api has not: test_hpa.py
TRIGGERS = [t for t in Trigger if t not in (Trigger.NODE_DOWN, Trigger.HPA_SCALE_IN)]


results = results_side_by_side({t.value: (CellSpec("shop-api", t, ConnMode.NEW), OPTS) for t in TRIGGERS})


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_own_workload_with_every_trigger(results: Results, trigger: Trigger) -> None:
    r = result(results, trigger.value)
    r.write(Path("results/e2e") / f"{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.window_sent > 500, why
    assert any(e.source == "pod" and e.state == "deleted" for e in r.events), f"{why}: the trigger removed no pod"
    if trigger in (Trigger.SET_IMAGE, Trigger.ROLLBACK):
        images = [e.state for e in r.events if e.source == "harness" and e.name == "trigger"]
        assert any("rollout-harness/probe-app" in s or "undo" in s for s in images), images
    if trigger in (Trigger.SET_IMAGE, Trigger.DRAIN):
        assert r.lost == 0, why


async def test_overlays_show_what_two_settings_are_worth_on_your_workload(tmp_path: Path, target: Target) -> None:
    """A workload without probes or preStop loses requests as written; the same file with a TCP readinessProbe and
    a native preStop sleep (two overlays) loses none. set-image without --new-image: a pod-template change."""
    cart = Path(__file__).parents[1] / "examples" / "cart-naive.yaml"
    argv = ["compare", "--workload", str(cart), "--variants", "as-is,readiness-tcp+prestop-sleep", "--triggers", "set-image"]
    argv += ["--trials", "1", "--rate", "150", "--no-up", "--max-failures", "0", "--out", str(tmp_path), "--no-pictures"]
    argv += ["--parallel", "2"]  # side by side, as the module's other cells (tests/e2e/conftest.py: side_by_side)
    assert await asyncio.to_thread(main, argv) == EXIT_OVER_BUDGET, "as written, the workload must break a zero budget"
    runs = {r.variant: r for r in load_results(tmp_path)}
    assert set(runs) == {"cart-naive", "cart-naive+readiness-tcp+prestop-sleep"}, set(runs)
    for r in runs.values():
        assert r.status is Status.USED and any(e.source == "pod" and e.state == "deleted" for e in r.events), r.reasons
    assert runs["cart-naive"].lost > 0, "no probes and an app slow to listen: new pods refuse connections"
    fixed = runs["cart-naive+readiness-tcp+prestop-sleep"]
    assert fixed.lost == 0, fixed.lost_by_kind
