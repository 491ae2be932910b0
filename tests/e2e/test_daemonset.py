"""The same pods as a DaemonSet (`--kind daemonset`, one pod per node, the control plane's included), known answers on
set-image: naive loses requests; best-practice (surge one pod per node first, readiness, graceful app, preStop)
loses none, through a Service with externalTrafficPolicy Cluster and Local alike (Local: the NodePort the load enters
at reaches only the control-plane node's own pod, so that node's surge pod must be ready before its old pod goes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, known_answer, result, results_side_by_side

from harness.model import CellSpec, ConnMode, RunOptions, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0, kind="daemonset")
VARIANTS = ["naive", "best-practice", "etp-local"]


results = results_side_by_side({v: (CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW), OPTS) for v in VARIANTS})


@pytest.mark.parametrize("variant", VARIANTS)
def test_daemonset_set_image(results: Results, variant: str) -> None:
    r = result(results, variant)
    r.write(Path("results/e2e") / f"ds-{r.name}.json")
    assert r.provenance.options["kind"] == "daemonset"
    known_answer(r, lossy=variant == "naive")
    replaced = {e.name for e in r.events if e.source == "pod" and e.state == "terminating"}
    assert len(replaced) == 3, f"one pod per node, the control plane's included, each replaced: {replaced}"
