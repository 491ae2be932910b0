"""Modes h2 and grpc on the cluster (issue 20's known answers): a few long-lived connections, streams multiplexed on
them. naive (exits at SIGTERM) loses streams on set-image; best-practice (readiness, a preStop sleep, then a graceful
drain that sends GOAWAY and finishes the streams in flight) loses none."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import known_answer

from harness.measure import run_cell
from harness.model import CellSpec, ConnMode, RunOptions, Trigger
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0)


@pytest.mark.parametrize("mode", [ConnMode.H2, ConnMode.GRPC])
@pytest.mark.parametrize("variant", ["naive", "best-practice"])
async def test_mux_set_image(target: Target, variant: str, mode: ConnMode) -> None:
    r = await run_cell(target, CellSpec(variant, Trigger.SET_IMAGE, mode), OPTS)
    r.write(Path("results/e2e") / f"mux-{r.name}.json")
    known_answer(r, lossy=variant == "naive")
