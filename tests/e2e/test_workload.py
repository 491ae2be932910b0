"""Your own workload (`--workload`): a Deployment whose names, labels, container name and ports all differ from the
probe app's is deployed into a fresh namespace and rolled with every trigger; set-image goes to --new-image.
It is built like best-practice (readiness, preStop, graceful drain, maxUnavailable 0, PDB), so set-image and
drain, the known answers, lose nothing; every trigger must complete with a used (not blind) run that removed pods.
Overlays on your own workload (cart-naive as written and with two of them): test_gatefile_on_cluster.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, result, results_side_by_side

from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger

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
