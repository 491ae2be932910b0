"""Client-side discovery through a service registry (`--discovery registry`): the client in a pod lists the pods in
the variant's registry (the probe app as ROLE=registry; heartbeat 5 s, lease 15 s) every 5 s and calls pod IPs
directly. Known answers on set-image (the article's Eureka recipe):
- registry-naive loses requests: its pods never deregister, so each old pod stays listed until its lease expires,
  10-15 s after it exited (its graceful drain ends 5 s after SIGTERM), and the client calls it meanwhile: refused or
  no_route (a few connect_timeout where ICMP errors are rate-limited, a few resets of calls in flight at its exit);
- registry-down-prestop loses nothing: its preStop marks the instance DOWN and sleeps 8 s, so the client (fetching
  every 5 s) has dropped it before SIGTERM, and the pod still drains 5 s after that.
The tail covers the lease and the fetch (5 + 15 s) on top of its own 3 s, so the naive loss is counted whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Status, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.mark.parametrize(("variant", "lossless"), [("registry-naive", False), ("registry-down-prestop", True)])
async def test_registry_discovery_set_image(target: Target, variant: str, lossless: bool) -> None:
    opts = RunOptions.of(rate=150, baseline=2.0, tail=3.0, client="pod", discovery="registry")
    r = await run_cell(target, CellSpec(variant, Trigger.SET_IMAGE, ConnMode.NEW), opts)
    r.write(Path("results/e2e") / f"registry-{r.name}.json")
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED and r.provenance.options["discovery"] == "registry", why
    assert r.window is not None and r.window.end_s - r.window.settled_s >= 5.0 + 15.0 + 3.0 - 0.5, r.window  # lease + fetch + tail
    if lossless:
        assert r.lost == 0, why
    else:  # calls to gone pods only: no HTTP error, and no failed fetch of the registry (`other`)
        assert r.lost > 0 and set(r.lost_by_kind) <= {"refused", "no_route", "connect_timeout", "reset"}, why
