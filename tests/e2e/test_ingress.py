"""`--via ingress`: the load enters through the Traefik ingress controller (installed on first use), which balances to
the pods' IPs itself. Known answers on set-image: naive loses requests, each one Traefik's HTTP 502 (the pod refused
or dropped the proxied connection), with the controller's retry off and on alike (a retry can land on a pod that is
going too); best-practice (readiness, preStop sleep 5 s, graceful app) loses none: Traefik stops sending to a pod
once its endpoint is no longer serving, well within the preStop sleep."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, known_answer, result, results_side_by_side

from harness.model import CellSpec, ConnMode, Phase, RunOptions, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


CELLS = [("naive", "ingress"), ("best-practice", "ingress"), ("naive", "ingress-retry")]


OPTS = {via: RunOptions.of(rate=150, baseline=2.0, tail=3.0, via=via) for _, via in CELLS}
results = results_side_by_side({f"{v}-{via}": (CellSpec(v, Trigger.SET_IMAGE, ConnMode.NEW), OPTS[via]) for v, via in CELLS})


@pytest.mark.parametrize(("variant", "via"), CELLS)
def test_set_image_through_the_ingress(results: Results, variant: str, via: str) -> None:
    r = result(results, f"{variant}-{via}")
    r.write(Path("results/e2e") / f"{via}-{r.name}.json")
    assert r.provenance.options["via"] == via
    assert len(r.phases[Phase.BASELINE].ok_by_pod) >= 3, "the controller balances over the pods (every ready one, by the gate)"
    known_answer(r, lossy=variant == "naive")
    assert set(r.lost_by_kind) <= {"http_5xx"}, r.lost_by_kind
    assert {s.status for s in r.failure_samples} <= {502}, "Traefik answers a pod's refusal or reset with 502 Bad Gateway"
