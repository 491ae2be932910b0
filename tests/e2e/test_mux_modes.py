"""Modes h2 and grpc on the cluster (issue 20's known answers): a few long-lived connections, streams multiplexed on
them. naive (exits at SIGTERM) loses streams on set-image in both modes; best-practice (readiness, a preStop sleep,
then a graceful drain that sends GOAWAY and finishes the streams in flight) loses none in either.

best-practice in grpc lost 1 call of ~1,800 on 2026-12-04 (CANCELLED): grpcio's server refused new calls at the
moment it announced GOAWAY. The probe app's gRPC server now closes a connection as its HTTP/2 server does (GOAWAY
2^31-1, a second later GOAWAY with the last stream, then the close), so it refuses no call the client sent. What is
left was the client's own race: grpcio cancels, unsent, a call it starts after it read a GOAWAY and before its
channel moves on (UNAVAILABLE naming the GOAWAY), which cost best-practice one call in 1 rollout of 3 on 2026-12-04
(bench/paths.sh) with transparent retry off. The client now keeps gRPC's transparent retry on, as every gRPC client
has it (no retry policy: a call the server may have seen is never resent), and it resends exactly such calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, known_answer, result, results_side_by_side

from harness.model import CellSpec, ConnMode, RunOptions, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=3.0)


CELLS = [("naive", ConnMode.H2), ("best-practice", ConnMode.H2), ("naive", ConnMode.GRPC), ("best-practice", ConnMode.GRPC)]


results = results_side_by_side({f"{v}-{m.value}": (CellSpec(v, Trigger.SET_IMAGE, m), OPTS) for v, m in CELLS})


@pytest.mark.parametrize(("variant", "mode"), CELLS)
def test_mux_set_image(results: Results, variant: str, mode: ConnMode) -> None:
    r = result(results, f"{variant}-{mode.value}")
    r.write(Path("results/e2e") / f"mux-{r.name}.json")
    known_answer(r, lossy=variant == "naive")
