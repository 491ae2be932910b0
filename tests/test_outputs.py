"""Outputs a program can rely on: CSV columns that do not change with the data, the settings in the cells JSON as
typed values grouped as RunOptions groups them, `report --pictures` drawing the PNGs again from saved results, and
`load --format`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import RawServer, free_port, respond
from test_analysis import records, run
from test_cli import one_error_line
from test_schemas import SOME_OPTIONS, saved_results

from harness import plot
from harness.classify import FAILURE_KINDS
from harness.cli import main
from harness.gate import Budget
from harness.report import CSV_FIELDS, LOAD_CSV_FIELDS, cells_csv, cells_json
from harness.results import load_results

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_csv_header_does_not_change_with_the_data() -> None:
    """A lossy cell with refusals, a lossless one, and a cell of only HTTP errors and a failed trial: the same header,
    every failure kind a column in classify's order, 0 for a kind the cell did not lose."""
    lossy = [replace(run(records({400 + i: "refused" for i in range(5)})), trial=t) for t in (1, 2)]
    lossless = [replace(run(records()), variant="best-practice", trial=t) for t in (1, 2)]
    other = [replace(run(records({400: "http_5xx"})), variant="readiness"), replace(run(records()), variant="readiness", trial=2)]
    outputs = [cells_csv(runs, Budget()) for runs in (lossy, lossless, other, [*lossy, *lossless, *other])]
    headers = {out.splitlines()[0] for out in outputs}
    assert headers == {",".join([*CSV_FIELDS, *(f"lost_{k.value}" for k in FAILURE_KINDS)])}
    (row,) = csv.DictReader(io.StringIO(outputs[0]))
    assert (row["lost_refused"], row["lost_no_route"], row["lost_http_5xx"]) == ("5", "0.0", "0.0")


def test_the_cells_json_carries_the_settings_typed_and_grouped(tmp_path: Path) -> None:
    """Numbers as numbers, booleans as booleans, each option under its RunOptions group (the mode with the traffic),
    the cluster settings, versions and content hashes as recorded; one entry per key the cells name."""
    runs = saved_results(tmp_path, SOME_OPTIONS)
    doc = json.loads(cells_json(runs, Budget()))
    first = doc["settings"][0]
    assert first["options"] == {
        "traffic": {
            "rate": 150.0,
            "connect_timeout": 3.0,
            "read_timeout": 5.0,
            "connections": 16,
            "path": "/",
            "client": "pod",
            "discovery": "dns",
            "dns_cache": 2.0,
            "mode": "new",
        },
        "timing": {"baseline": 3.0, "tail": 3.0, "rollout_timeout": 180.0},
        "thresholds": {"max_lateness": 0.5, "max_gap": 0.2},
        "schedule": {"trials": 35, "parallel": 2, "ahead": False, "certify": 0.1},
    }
    assert first["cluster"]["proxy_mode"] == "iptables" and first["versions"]["kubernetes"] == "v1.34.4"
    assert set(first["content"]) == {"source", "commit", "variant", "image rollout-harness/probe-app:v1"}
    assert {c["key"] for c in doc["cells"]} == {s["key"] for s in doc["settings"]}


def test_report_draws_the_pictures_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From a result with its records kept beside it (100 ms bins) and from one without (its per-second timeline);
    none for a failed rollout (nothing measured), an overview of them all, and results read from a file as well as a
    directory."""
    if not plot.available():
        pytest.skip("matplotlib (the plot extra) is not installed")
    kept, bare, pictures = tmp_path / "kept", tmp_path / "bare", tmp_path / "pictures"
    saved_results(kept)
    saved_results(bare, keep_records=False)
    assert len(list(kept.glob("*.records.jsonl"))) == 2 and not list(bare.glob("*.records.jsonl"))
    capsys.readouterr()
    assert main(["report", str(kept), str(bare / "naive__set-image__new__t1.json"), "--pictures", str(pictures)]) == 0
    drawn = sorted(p.name for p in pictures.iterdir())
    assert drawn == [
        "best-practice__set-image__new__t1.png",
        "naive__set-image__new__t1-2.png",  # the same run name from the second place
        "naive__set-image__new__t1.png",
        "overview.png",
    ]
    assert all((pictures / name).read_bytes()[:8] == PNG for name in drawn)
    assert capsys.readouterr().err.splitlines() == [f"pictures: 4 drawn in {pictures}"]  # and no warning


def test_report_pictures_without_matplotlib_or_a_place_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run(records()).write(tmp_path / "r" / "a.json")
    assert main(["report", str(tmp_path / "r"), "--pictures", "/proc/nope"]) == 2
    assert "--pictures /proc/nope: cannot write there" in one_error_line(capsys)
    monkeypatch.setattr(plot, "available", lambda: False)
    assert main(["report", str(tmp_path / "r"), "--pictures", str(tmp_path / "p")]) == 3
    assert one_error_line(capsys).endswith("--pictures needs matplotlib: pip install 'rollout-harness[plot]'")
    assert load_results(tmp_path / "r") and not (tmp_path / "p").exists()


def _load(capsys: pytest.CaptureFixture[str], url: str, *flags: str) -> tuple[int, str]:
    code = main(["-q", "load", url, "--rate", "50", "--duration", "200ms", *flags])
    return code, capsys.readouterr().out


@pytest.mark.integration
def test_load_formats(raw_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Against a real loopback server answering 503, and a closed port: CSV under one fixed header whatever failed
    (every kind a column), the JSON result, and the table as before (the default)."""
    server: RawServer = raw_server(respond(503, "Service Unavailable"))
    closed = f"http://127.0.0.1:{free_port()}/"
    outputs = [_load(capsys, url, "--format", "csv") for url in (server.url, closed)]
    assert [code for code, _ in outputs] == [0, 0]
    header = ",".join([*LOAD_CSV_FIELDS, *(f"failed_{k.value}" for k in FAILURE_KINDS)])
    assert [out.splitlines()[0] for _, out in outputs] == [header, header]
    rows = [next(csv.DictReader(io.StringIO(out))) for _, out in outputs]
    assert [(r["url"], r["requests"], r["failed"], r["failed_http_5xx"], r["failed_refused"]) for r in rows] == [
        (server.url, "10", "10", "10", "0"),
        (closed, "10", "10", "0", "10"),
    ]
    assert rows[0]["not_ok_pct"] == "100.0" and rows[0]["mode"] == "new" and rows[0]["outage_start_s"] == "0.0"
    code, out = _load(capsys, closed, "--format", "json", "--max-failures", "9")
    assert code == 1 and json.loads(out)["summary"]["by_kind"] == {"refused": 10}
    code, out = _load(capsys, closed)
    assert code == 0 and out.splitlines()[0].split("|")[1:3] == [" metric                                 ", " value           "]


def test_load_timeline_goes_with_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "http://127.0.0.1:9/", "--format", "csv", "--timeline"]) == 2
    assert "--timeline adds a table: it goes with --format table" in one_error_line(capsys)
