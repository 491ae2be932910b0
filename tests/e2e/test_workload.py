"""Your own workload (`--workload`): a Deployment whose names, labels, container name and ports all differ from the
probe app's is deployed into a fresh namespace and rolled with every trigger; set-image goes to --new-image.
It is built like best-practice (readiness, preStop, graceful drain, maxUnavailable 0, PDB), so set-image and
drain, the known answers, lose nothing; every trigger must complete with a used (not blind) run that removed pods."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.actions import Trigger
from harness.experiment import CellSpec, RunOptions, Target, run_cell
from harness.load import ConnMode
from harness.results import Status

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
SHOP = Path(__file__).parents[1] / "examples" / "shop-api.yaml"
OPTS = RunOptions(rate=150, baseline=2.0, tail=3.0, workload=SHOP, new_image="rollout-harness/probe-app:v2", port=8000)


@pytest.mark.parametrize("trigger", list(Trigger))
async def test_own_workload_with_every_trigger(target: Target, trigger: Trigger) -> None:
    r = await run_cell(target, CellSpec("shop-api", trigger, ConnMode.NEW), OPTS)
    r.write(Path("results/e2e") / f"{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.window_sent > 500, why
    assert any(e.source == "pod" and e.state == "deleted" for e in r.events), f"{why}: the trigger removed no pod"
    if trigger in (Trigger.SET_IMAGE, Trigger.ROLLBACK):
        images = [e.state for e in r.events if e.source == "harness" and e.name == "trigger"]
        assert any("rollout-harness/probe-app" in s or "undo" in s for s in images), images
    if trigger in (Trigger.SET_IMAGE, Trigger.DRAIN):
        assert r.lost == 0, why
