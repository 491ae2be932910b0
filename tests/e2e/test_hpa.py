"""hpa-scale-in known answers: the variant's HorizontalPodAutoscaler (CPU, held at 4 pods) scales the workload in
once its minimum is 1 and its target far above the pods' use, as when load falls (metrics-server, installed by `up`,
feeds it): naive loses requests, readiness + preStop sleep (article 002's graceful scale-in) loses none."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, known_answer, result, results_side_by_side

from harness.model import CellSpec, ConnMode, RunOptions, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0)
VARIANTS = ["hpa-naive", "hpa-prestop"]


# side by side: each autoscaler scales its own Deployment
results = results_side_by_side({v: (CellSpec(v, Trigger.HPA_SCALE_IN, ConnMode.NEW), OPTS) for v in VARIANTS})


@pytest.mark.parametrize("variant", VARIANTS)
def test_hpa_scale_in(results: Results, variant: str) -> None:
    r = result(results, variant)
    r.write(Path("results/e2e") / f"hpa-{r.name}.json")
    known_answer(r, lossy=variant == "hpa-naive")
    gone = {e.name for e in r.events if e.source == "pod" and e.state == "terminating"}
    assert len(gone) == 3, f"the autoscaler removed 3 of 4 pods: {gone}"
