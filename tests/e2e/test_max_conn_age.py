"""A client pinned to the pods it reached, and a maximum connection age that moves it (issue 20's known answers).

Mode h2, 2 connections, trigger scale (4 -> 1 -> 4). Scaling to 1 sends the connections on the 3 removed pods a
GOAWAY once their preStop sleep ends, and the client reopens them on the one pod left; scaling back to 4 makes 3
new pods that nothing sends the client to. The figure is RunResult.tail_new_pods_pct: of the tail's answers, the %
given by the pods the rollout made.

- best-practice: pinned. Nothing reopens a connection after the scale-down, so the new pods answer nothing (0 %).
  PINNED_MAX_PCT (5 %) is where pinned ends: one of the 2 connections moved to a new pod for the last second of the
  10 s tail would pass it.
- max-conn-age (best-practice + MAX_CONN_AGE=2): each connection is sent GOAWAY 2 s after it opened, so each of the
  2 reopens ~5 times in the 10 s tail, each time on one of the 4 ready pods at random (iptables kube-proxy), 3 of
  them new. Simulated (each reopening lands on the pod left with probability 1/4; those in the tail's first 2 s all
  do, as kube-proxy may still lag the new endpoints), the share averages ~50 % and is under MOVED_MIN_PCT (10 %) in
  about 3 runs in 10,000; with an age of 5 s it would be 1 in 30, hence 2 s.

Both lose nothing (the GOAWAYs are the two-phase graceful close; h2's client resends nothing). About 45 s a cell:
set-up, 2 s baseline, ~14 s scale (preStop 5 s + drain 5 s, then 3 pods start), 10 s tail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e.conftest import Results, known_answer, result, results_side_by_side

from harness.model import CellSpec, ConnMode, Phase, RunOptions, Trigger

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
OPTS = RunOptions.of(rate=150, baseline=2.0, tail=10.0, mux_connections=2)
PINNED_MAX_PCT = 5.0
MOVED_MIN_PCT = 10.0


VARIANTS = ["best-practice", "max-conn-age"]


results = results_side_by_side({v: (CellSpec(v, Trigger.SCALE, ConnMode.H2), OPTS) for v in VARIANTS})


@pytest.mark.parametrize("variant", VARIANTS)
def test_scale_leaves_the_client_pinned_unless_connections_age(results: Results, variant: str) -> None:
    r = result(results, variant)
    r.write(Path("results/e2e") / f"maxage-{r.name}.json")
    known_answer(r, lossy=False)
    tail, share = r.phases[Phase.TAIL].ok_by_pod, r.tail_new_pods_pct
    why = f"{r.name}: new pods {sorted(r.new_pods)}, tail answers by pod {tail}, new pods' share {share}"
    assert len(r.new_pods) == 3, why  # scale 4 -> 1 -> 4 made 3 pods
    assert share is not None and sum(tail.values()) > 1000, why  # ~1,500 answers in a 10 s tail at 150/s
    if variant == "best-practice":
        assert share <= PINNED_MAX_PCT, why
    else:
        assert share >= MOVED_MIN_PCT, why
