"""The same pods as a StatefulSet (`--kind statefulset`), known answers on set-image: naive loses requests,
best-practice loses none; the rolling update goes one pod at a time from the highest ordinal, and each pod comes
back under its own name."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, kind="statefulset")


@pytest.mark.parametrize("variant", ["naive", "best-practice"])
async def test_statefulset_set_image(target: Target, variant: str) -> None:
    r = await run_cell(target, CellSpec(variant, Trigger.SET_IMAGE, ConnMode.NEW), OPTS)
    r.write(Path("results/e2e") / f"sts-{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.provenance.options["kind"] == "statefulset", why
    order = [e.name for e in r.events if e.source == "pod" and e.state == "terminating"]
    assert list(dict.fromkeys(order)) == ["web-3", "web-2", "web-1", "web-0"], order
    if variant == "naive":
        assert r.lost > 0, why
    else:
        assert r.lost == 0, why
