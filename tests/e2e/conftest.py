"""E2E fixtures: one session-scoped real kind cluster, a fresh namespace per test via harness.experiment.

The cluster is brought up (or reused) by harness.cluster.up() and deleted at the end of the session unless
RH_KEEP_CLUSTER=1 (or --keep-cluster). If it cannot come up the tests fail; they are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness import cluster
from harness.kube import Kube


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[cluster.ClusterInfo]:
    info = cluster.up()
    try:
        yield info
    finally:
        keep = os.environ.get("RH_KEEP_CLUSTER") == "1" or request.config.getoption("--keep-cluster", default=False)
        if not keep:
            cluster.down()


@pytest.fixture
def kube(kind_cluster: cluster.ClusterInfo) -> Iterator[Kube]:
    k = Kube(kind_cluster.kubeconfig)
    try:
        yield k
    finally:
        k.close()
