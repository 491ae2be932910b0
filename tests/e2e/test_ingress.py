"""`--via ingress`: the load enters through the Traefik ingress controller (installed on first use), which balances to
the pods' IPs itself. Known answers on set-image: naive loses requests, each one Traefik's HTTP 502 (the pod refused
or dropped the proxied connection), with the controller's retry off and on alike (a retry can land on a pod that is
going too); best-practice (readiness, preStop sleep 5 s, graceful app) loses none: Traefik stops sending to a pod
once its endpoint is no longer serving, well within the preStop sleep."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import known_answer

from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, Phase, RunOptions, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("variant", "via"), [("naive", "ingress"), ("best-practice", "ingress"), ("naive", "ingress-retry")])
async def test_set_image_through_the_ingress(target: Target, variant: str, via: str) -> None:
    opts = RunOptions.of(rate=150, baseline=2.0, tail=3.0, via=via)
    r = await run_cell(target, CellSpec(variant, Trigger.SET_IMAGE, ConnMode.NEW), opts)
    r.write(Path("results/e2e") / f"{via}-{r.name}.json")
    assert r.provenance.options["via"] == via
    assert len(r.phases[Phase.BASELINE].ok_by_pod) >= 3, "the controller balances over the pods (every ready one, by the gate)"
    known_answer(r, lossy=variant == "naive")
    assert set(r.lost_by_kind) <= {"http_5xx"}, r.lost_by_kind
    assert {s.status for s in r.failure_samples} <= {502}, "Traefik answers a pod's refusal or reset with 502 Bad Gateway"
