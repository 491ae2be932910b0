"""Fixtures: raw loopback servers and probe_app processes, each cleaned up at teardown; logging restored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Handler, ProbeApps, RawServer


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
def probe_apps(tmp_path: Path) -> Iterator[ProbeApps]:
    apps = ProbeApps(tmp_path)
    try:
        yield apps
    finally:
        apps.close()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """cli.main() reconfigures the root logger (basicConfig force=True); undo it after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("asyncio", "kubernetes", "urllib3")}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    for h in handlers:
        if h not in root.handlers:
            root.addHandler(h)
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)
