"""Client-side discovery (`--discovery dns`): the client in a pod resolves the headless Service through the
cluster's CoreDNS (TTL 5 s) and calls pod IPs directly. Known answers on set-image:
- prestop-15s loses nothing: a pod keeps serving 15 s after it leaves DNS, and no client keeps it longer than 5 s;
- readiness-prestop, lossless through the Service, loses requests when the client keeps answers 30 s (a JVM's
  default): every old pod is gone (5 s after it left DNS) before the client asks again, and its calls fail with
  no_route (the pod IP is gone) or refused, plus a few resets of calls in flight when it exited."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("variant", "cache"), [("prestop-15s", 0.0), ("readiness-prestop", 30.0)])
async def test_dns_discovery_set_image(target: Target, variant: str, cache: float) -> None:
    opts = RunOptions.of(rate=150, baseline=2.0, tail=3.0, client="pod", discovery="dns", dns_cache=cache)
    r = await run_cell(target, CellSpec(variant, Trigger.SET_IMAGE, ConnMode.NEW), opts)
    r.write(Path("results/e2e") / f"dns-{r.name}-cache{cache:g}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.provenance.options["discovery"] == "dns", why
    assert r.window is not None and r.window.end_s - r.window.settled_s >= (cache or 5.0) + 3.0 - 0.5, r.window  # the tail covers the cache
    if cache:
        assert r.lost_by_kind.get("no_route", 0) > 0 and set(r.lost_by_kind) <= {"refused", "no_route", "reset"}, why
    else:
        assert r.lost == 0, why
