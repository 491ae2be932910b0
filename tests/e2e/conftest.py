"""E2E fixtures: one session-scoped real kind cluster and a Target (API client, NodePort pool) per test.

Runs only with --with-e2e. The cluster is brought up (or reused) by harness.cluster.up() and deleted at the end
of the session unless --rollout-keep-cluster (the pytest plugin's flag, one for both families of fixtures; or
RH_KEEP_CLUSTER=1). If it cannot come up the tests fail.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from harness import cluster
from harness.model import Status
from harness.results import RunResult
from harness.target import Target, connect


def known_answer(r: RunResult, lossy: bool) -> None:
    """A used run that lost requests (lossy) or none, with the run's status, reasons, kinds and error when not."""
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.status is Status.USED, why
    assert (r.lost > 0) if lossy else (r.lost == 0), why


def keep_cluster(config: pytest.Config) -> bool:
    """Whether the session leaves the cluster running at its end."""
    return os.environ.get("RH_KEEP_CLUSTER") == "1" or bool(config.getoption("--rollout-keep-cluster"))


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[cluster.ClusterInfo]:
    info = cluster.up()
    try:
        yield info
    finally:
        if not keep_cluster(request.config):
            cluster.down()


@pytest.fixture
async def target(kind_cluster: cluster.ClusterInfo) -> AsyncIterator[Target]:
    t = await connect(no_up=True)
    try:
        yield t
    finally:
        t.kube.close()
