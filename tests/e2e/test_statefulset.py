"""The same pods as a StatefulSet (`--kind statefulset`), known answers on set-image: naive loses requests,
best-practice loses none; the rolling update goes one pod at a time from the highest ordinal, and each pod comes
back under its own name."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, result, results_side_by_side

from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, kind="statefulset")
VARIANTS = ["naive", "best-practice"]


results = results_side_by_side({v: (CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW), OPTS) for v in VARIANTS})


@pytest.mark.parametrize("variant", VARIANTS)
def test_statefulset_set_image(results: Results, variant: str) -> None:
    r = result(results, variant)
    r.write(Path("results/e2e") / f"sts-{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.provenance.options["kind"] == "statefulset", why
    order = [e.name for e in r.events if e.source == "pod" and e.state == "terminating"]
    assert list(dict.fromkeys(order)) == ["web-3", "web-2", "web-1", "web-0"], order
    if variant == "naive":
        assert r.lost > 0, why
    else:
        assert r.lost == 0, why
