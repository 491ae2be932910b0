"""main(argv) on bad input: exit code 2 and exactly one line `rollout-harness: error: ...` on stderr, no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import free_port
from test_analysis import records, run

from harness.cli import main
from harness.durations import ACCEPTED
from harness.results import SCHEMA


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("rollout-harness: error: "), lines[0]
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["load", "http://127.0.0.1:9/", "--duration", "1x"], ACCEPTED),
        (["load", "http://127.0.0.1:9/", "--duration", "-3"], ACCEPTED),
        (["load", "http://127.0.0.1:9/", "--duration", "nan"], ACCEPTED),
        (["load", "http://127.0.0.1:9/", "--read-timeout", "m5"], ACCEPTED),
        (["run", "--baseline", "5 s"], ACCEPTED),
        (["launch"], "invalid choice: 'launch'"),
        ([], "required"),
        (["load", "ftp://127.0.0.1/"], "bad URL 'ftp://127.0.0.1/'"),
        (["load", "127.0.0.1:8080"], "bad URL"),
        (["load", "http://127.0.0.1:9/", "--rate", "-5"], "must be positive: '-5'"),
        (["load", "http://127.0.0.1:9/", "--rate", "0"], "must be positive"),
        (["load", "http://127.0.0.1:9/", "--rate", "lots"], "not a number: 'lots'"),
        (["load", "http://127.0.0.1:9/", "--rate", "1e9"], "bad rate"),
        (["load", "http://127.0.0.1:9/", "--mode", "udp"], "invalid choice: 'udp'"),
        (["load", "http://127.0.0.1:9/", "--duration", "0"], "duration must be positive"),
        (["load", "http://127.0.0.1:9/", "--bogus"], "unrecognized arguments: --bogus"),
        (["load", "http://[::1"], "bad URL"),
        (["load", "http:///nohost"], "bad URL"),
        (["run", "--rollout-timeout", "0", "--no-up"], "--rollout-timeout 0s is too short"),
        (["run", "--variant", "nope", "--no-up"], "unknown variant 'nope'"),
        (["run", "--trigger", "explode", "--no-up"], "unknown trigger"),
        (["compare", "--modes", "udp", "--no-up"], "unknown mode"),
        (["run", "--no-up", "--out", "/proc/rh-cannot-write"], "--out /proc/rh-cannot-write: cannot write there"),
        (["load", "http://127.0.0.1:9/", "--out", "/proc/x/r.json"], "cannot write there"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], expect: str) -> None:
    assert main(argv) == 2
    assert expect in one_error_line(capsys)


def test_report_on_missing_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing)]) == 2
    assert f"no such results directory: {missing}" in one_error_line(capsys)


def test_report_on_malformed_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(records()).write(tmp_path / "a.json")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "broken.json").write_text('{"schema": "rollout-harness/run@2", "summary": {')
    assert main(["report", str(tmp_path)]) == 2
    line = one_error_line(capsys)
    assert "broken.json: not valid JSON" in line and "line 1" in line


def test_report_on_dir_without_results(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps({"schema": "something/else"}))
    assert main(["report", str(tmp_path)]) == 2
    assert f"no {SCHEMA} results" in one_error_line(capsys)


def test_report_renders_saved_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run(records({400: "refused"})).write(tmp_path / "x" / "naive.json")
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("cluster: ")
    assert lines[2].split("|")[1].strip() == "verdict"
    assert "naive" in out and "set-image" in out and "lossy" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("rollout-harness ")


@pytest.mark.integration
def test_load_against_closed_port_succeeds_and_counts_refusals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Refusals are measurements, not errors: exit 0, every request counted as refused."""
    out = tmp_path / "r.json"
    records = tmp_path / "r.jsonl"
    argv = [
        "-q",
        "load",
        f"http://127.0.0.1:{free_port()}/",
        "--rate",
        "50",
        "--duration",
        "200ms",
        "--out",
        str(out),
        "--records",
        str(records),
    ]
    assert main(argv) == 0
    s = json.loads(out.read_text())["summary"]
    assert (s["requests"], s["failed"], s["by_kind"]) == (10, 10, {"refused": 10})
    assert len(records.read_text().splitlines()) == 10
    assert re.search(r"\|\s+refused\s+\|\s+10\s+\|", capsys.readouterr().out)
