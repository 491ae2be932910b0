"""Fixtures: raw loopback servers, TCP forwarders and probe_app processes, each cleaned up at teardown.

Tiers (kopf's convention): a bare `pytest` runs unit + integration tests and never touches the cluster (the pull and
load-image tests ask the local Docker, the pull test with `rh-test-*` images of its own); `--with-e2e`
adds the tests on the real kind cluster (`ci/rh test` and `.ci/run` pass it, and CI fails on any skip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Forwarder, Handler, ProbeApps, RawServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--with-e2e", action="store_true", help="also run the e2e tests on the real kind cluster (brings it up)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "examples" in item.path.parts:  # user-style tests on the cluster, written without our markers
            item.add_marker(pytest.mark.e2e)
    with_e2e = config.getoption("--with-e2e")
    items.sort(key=lambda item: order(item, with_e2e))  # stable: the rest keep their order
    if with_e2e:
        return
    skip = pytest.mark.skip(reason="e2e tests are not enabled; use --with-e2e (brings up the kind cluster)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


def order(item: pytest.Item, with_e2e: bool) -> int:
    """Where an item runs: `last` at the end; with --with-e2e, the tests that need neither the cluster nor Docker
    first (`ci/rh test` runs them while `up` builds and starts both), then `first` (it waits for that `up`), then the
    rest."""
    if "last" in item.keywords:
        return 3
    if not with_e2e:
        return 0
    if "first" in item.keywords:
        return 1
    return 2 if "e2e" in item.keywords or "docker" in item.keywords else 0


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler, **kw: int) -> RawServer:
        servers.append(RawServer(handler, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def forwarder() -> Iterator[Callable[[int], Forwarder]]:
    made: list[Forwarder] = []

    def start(backend: int) -> Forwarder:
        made.append(Forwarder(backend))
        return made[-1]

    yield start
    for f in made:
        f.close()


@pytest.fixture
def probe_apps(tmp_path: Path) -> Iterator[ProbeApps]:
    apps = ProbeApps(tmp_path)
    try:
        yield apps
    finally:
        apps.close()
