"""Pictures: a PNG per run (requests per 100 ms by outcome, pod states) and an overview per compare, drawn from
the same records and results the tables use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_analysis import records, run

from harness import plot
from harness.watch import Event

pytestmark = pytest.mark.skipif(not plot.available(), reason="matplotlib (the plot extra) is not installed")
PNG = b"\x89PNG\r\n\x1a\n"
EVENTS = [
    Event(0.0, "pod", "web-a", "ready"),
    Event(3.2, "pod", "web-b", "running"),
    Event(4.0, "pod", "web-b", "ready"),
    Event(4.1, "endpoint", "web-a", "serving-terminating"),
    Event(4.1, "pod", "web-a", "terminating"),
    Event(5.5, "pod", "web-a", "deleted"),
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
