"""The e2e tier's first test (marked `first`: tests/conftest.py runs it before every test that needs the cluster or
Docker, after those that need neither): the cluster comes up. `ci/rh test` starts `rollout-harness up` in the
background (on a fresh machine it builds the node image, ~10 min) and runs the other tests meanwhile; this test waits
for it (RH_UP_STATUS: the file its exit status is written to, RH_UP_LOG: its output) and shows its output. Without
them (`pytest --with-e2e` by hand) it brings the cluster up itself, as the session fixture would."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness import cluster

pytestmark = [pytest.mark.e2e, pytest.mark.first, pytest.mark.timeout(3600)]
WAIT_S = 3300  # a cold build takes ~10 min here


def test_the_cluster_comes_up(capsys: pytest.CaptureFixture[str]) -> None:
    status = os.environ.get("RH_UP_STATUS")
    if not status:
        assert cluster.up().name == cluster.CLUSTER
        return
    t0 = time.monotonic()
    while not Path(status).exists():
        assert time.monotonic() - t0 < WAIT_S, f"`rollout-harness up` has not ended after {WAIT_S}s"
        time.sleep(1)
    log = Path(os.environ.get("RH_UP_LOG", "/dev/null")).read_text(errors="replace")
    rc = Path(status).read_text().strip()
    with capsys.disabled():
        print(f"\n[ci/rh] `rollout-harness up`, run beside the tests before this one (waited {time.monotonic() - t0:.0f}s here):")
        print(log, end="")
    assert rc == "0", f"`rollout-harness up` exited {rc}: {log.strip().splitlines()[-1:] or ''}"
