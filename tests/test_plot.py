"""Pictures: a PNG per run (requests per 100 ms by outcome, pod states) and an overview per compare, drawn from
the same records and results the tables use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_analysis import records, run

from harness import plot
from harness.model import EndpointState, Event, PodState, Source

pytestmark = pytest.mark.skipif(not plot.available(), reason="matplotlib (the plot extra) is not installed")
PNG = b"\x89PNG\r\n\x1a\n"
EVENTS = [
    Event(0.0, Source.POD, "web-a", PodState.READY),
    Event(3.2, Source.POD, "web-b", PodState.RUNNING),
    Event(4.0, Source.POD, "web-b", PodState.READY),
    Event(4.1, Source.ENDPOINT, "web-a", EndpointState.SERVING_TERMINATING),
    Event(4.1, Source.POD, "web-a", PodState.TERMINATING),
    Event(5.5, Source.POD, "web-a", PodState.DELETED),
]


def test_run_picture(tmp_path: Path) -> None:
    recs = records({400 + i: "refused" for i in range(30)} | {450: "no_route"})
    r = run(recs, EVENTS)
    plot.run_png(r, recs, tmp_path / "run.png")
    assert (tmp_path / "run.png").read_bytes()[:8] == PNG


def test_overview_picture(tmp_path: Path) -> None:
    lossy = [replace(run(records({400 + i: "refused" for i in range(n)})), trial=t) for t, n in ((1, 10), (2, 30))]
    zero = [replace(run(records()), variant="best-practice", trial=t) for t in (1, 2)]
    plot.overview_png([*lossy, *zero], tmp_path / "overview.png")
    assert (tmp_path / "overview.png").read_bytes()[:8] == PNG
