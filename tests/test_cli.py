"""main(argv) on bad input: exit code 2 and exactly one line `rollout-harness: error: ...` on stderr, no traceback
(followed by the refused command's usage line when the parser refused it); on a failing cluster or machine, 3; on a
bug, 4 and one line naming the log file that holds the traceback."""

from __future__ import annotations

import concurrent.futures
import csv
import json
import logging
import re
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from support import free_port
from test_analysis import records, run
from test_manifests import BOMB, DEP, SVC

from harness.cli import VERBS, main
from harness.durations import ACCEPTED
from harness.errors import ApiError, ClusterError, CommandFailed, EnvironmentProblem, HarnessError, RolloutError, UsageError
from harness.results import SCHEMA


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line on stderr (and nothing on stdout); after it, only the usage line the parser adds."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) in (1, 2), captured.err
    assert lines[0].startswith("rollout-harness: error: "), lines[0]
    assert all(ln.startswith("usage: rollout-harness ") for ln in lines[1:]), captured.err
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
        (["load", "ftp://127.0.0.1/"], "bad URL 'ftp://127.0.0.1/': must start with http:// or https://"),
        (["load", "127.0.0.1:8080"], "bad URL"),
        (["load", "http://127.0.0.1:9/", "--rate", "-5"], "must be positive: '-5'"),
        (["load", "http://127.0.0.1:9/", "--rate", "0"], "must be positive"),
        (["load", "http://127.0.0.1:9/", "--rate", "lots"], "not a number: 'lots'"),
        (["load", "http://127.0.0.1:9/", "--rate", "1e9"], "rate 1e+09: must be in (0, 100000] requests/s"),
        (["load", "http://127.0.0.1:9/", "--mode", "udp"], "invalid choice: 'udp'"),
        (["load", "http://127.0.0.1:9/", "--duration", "0"], "duration 0s: must be in (0, 604800] s"),
        (["load", "http://127.0.0.1:9/", "--duration", "-1s"], "argument --duration: bad duration '-1s': must not be negative"),
        (["load", "http://127.0.0.1:9/", "--duration", "1e308"], "duration 1e+308s: must be in (0, 604800] s"),
        (["load", "http://127.0.0.1:9/", "--connect-timeout", "0"], "connect timeout 0s: must be in (0, 3600] s"),
        (["load", "http://127.0.0.1:9/", "--read-timeout", "0s"], "read timeout 0s: must be in (0, 3600] s"),
        (["load", "http://127.0.0.1:9/", "--connections", "5000"], "connections 5000: must be in [1, 1000]"),
        (["load", "http://127.0.0.1:9/", "--max-in-flight", "0"], "argument --max-in-flight: must be positive"),
        (
            ["load", "http://127.0.0.1:9/", "--max-in-flight", "1", "--rate", "2000"],
            "--max-in-flight 1: below the 16000 requests a stalled server holds",
        ),
        (["load", "http://127.0.0.1:9/", "-n", "0"], "argument -n/--requests: must be positive"),
        (["load", "http://127.0.0.1:9/", "--max-failures", "-1"], "--max-failures -1: must be 0 or more"),
        (["load", "http://127.0.0.1:9/", "--max-fail-pct", "-0.5"], "--max-fail-pct -0.5: must be in [0, 100]"),
        (["load", "http://127.0.0.1:9/", "--bogus"], "unrecognized arguments: --bogus"),
        (["load", "http://[::1"], "bad URL"),
        (["load", "http:///nohost"], "bad URL"),
        (["run", "--rollout-timeout", "0", "--no-up"], "rollout timeout 0s is too short"),
        (["run", "--rollout-timeout", "1e9", "--no-up"], "rollout timeout 1e+09s: must be in [1, 86400] s"),
        (["run", "--no-up", "--tail=-2s"], "argument --tail: bad duration '-2s': must not be negative"),
        (["run", "--no-up", "--baseline", "2h"], "baseline 7200s: must be in [0, 3600] s"),
        (["run", "--no-up", "--connect-timeout", "0"], "connect timeout 0s: must be in (0, 3600] s"),
        (["run", "--no-up", "--rate", "1e9"], "rate 1e+09: must be in (0, 100000] requests/s"),
        (["run", "--no-up", "--connections", "0"], "argument --connections: must be positive"),
        (["run", "--no-up", "--trials", "100000"], "trials 100000: must be in [1, 10000]"),
        (["compare", "--no-up", "--parallel", "100"], "parallel cells 100: must be in [1, 64]"),
        (["run", "--no-up", "--max-lateness", "0"], "maximum lateness 0s: must be in (0, 60] s"),
        (["run", "--no-up", "--max-gap", "2m"], "maximum gap 120s: must be in (0, 60] s"),
        (["run", "--no-up", "--certify", "0%"], "argument --certify: must be between 0% and 100%"),
        (["run", "--no-up", "--workload", "tests/examples/shop-api.yaml", "--port", "70000"], "Service port 70000: must be in [1, 65535]"),
        (["run", "--no-up", "--workload", "tests/examples/shop-api.yaml", "--port", "0"], "argument --port: must be positive"),
        (["run", "--variant", "nope", "--no-up"], "unknown variant 'nope'"),
        (["run", "--trigger", "explode", "--no-up"], "unknown trigger"),
        (["compare", "--modes", "udp", "--no-up"], "unknown mode"),
        (["compare", "--no-up", "--variants", ""], "--variants '': names nothing; give one or more, comma-separated"),
        (["compare", "--no-up", "--triggers", " , "], "--triggers ' , ': names nothing"),
        (["compare", "--no-up", "--modes", ""], "--modes '': names nothing"),
        (["compare", "--no-up", "--variants", "naive,readiness,naive"], "--variants 'naive,readiness,naive': naive given twice"),
        (["compare", "--no-up", "--workload", "tests/examples/shop-api.yaml", "--variants", ""], "--variants '': names nothing"),
        (["compare", "--no-up", "--modes", "new,keepalive,new"], "new given twice"),
        (["compare", "--no-up", "--modes", "new,h2,grpc", "--client", "pod"], "mode grpc runs from the host only"),
        (["run", "--no-up", "--mode", "h2", "--discovery", "dns"], "mode h2 runs from the host only"),
        (["run", "--no-up", "--mux-connections", "5000"], "multiplexed connections 5000: must be in [1, 1000]"),
        (["load", "https://127.0.0.1:9/", "--mode", "grpc"], "mode grpc speaks cleartext HTTP/2 (prior knowledge): give an http:// URL"),
        (["load", "http://127.0.0.1:9/", "--mode", "h3"], "invalid choice: 'h3'"),
        (["run", "--no-up", "--variant", ""], "unknown variant ''"),
        (["run", "--no-up", "--out", "/proc/rh-cannot-write"], "--out /proc/rh-cannot-write: cannot write there"),
        (["load", "http://127.0.0.1:9/", "--out", "/proc/x/r.json"], "--out /proc/x/r.json: cannot write there"),
        (["load", "http://127.0.0.1:9/", "--records", "/proc/nope/x"], "--records /proc/nope/x: cannot write there"),
        (["run", "--no-up", "--max-failures", "-1"], "--max-failures -1: must be 0 or more"),
        (["run", "--no-up", "--max-fail-pct", "101"], "--max-fail-pct 101: must be in [0, 100]"),
        (["compare", "--no-up", "--max-failures", "x"], "invalid int value: 'x'"),
        (["compare", "--no-up", "--format", "xml"], "invalid choice: 'xml'"),
        (["compare", "--no-up", "--junit", "/proc/rh/j.xml"], "--junit /proc/rh/j.xml: cannot write there"),
        (["report", "tests/examples", "--junit", "/proc/nope/j.xml"], "--junit /proc/nope/j.xml: cannot write there"),
        (["up", "--proxy-mode", "userspace"], "invalid choice: 'userspace'"),
        (["run", "--no-up", "--workload", "tests/examples/shop-api.yaml", "--variant", "naive"], "unknown overlay 'naive'; available: "),
        (["compare", "--no-up", "--workload", "tests/examples/shop-api.yaml", "--variants", "as-is,pdb+x"], "unknown overlay 'x'"),
        (["variants", "--workload", "/nonexistent.yaml"], "cannot read /nonexistent.yaml"),
        (["run", "--no-up", "--new-image", "x:2"], "a new image and a Service port go with your own workload"),
        (["run", "--no-up", "--path", "healthz"], "path 'healthz': must start with /"),
        (["run", "--no-up", "--workload", "/nonexistent.yaml"], "cannot read /nonexistent.yaml"),
        (["run", "--no-up", "--client", "tcp"], "invalid choice: 'tcp'"),
        (["run", "--no-up", "--variant", "recreate", "--kind", "statefulset"], "a Recreate strategy has no StatefulSet counterpart"),
        (["run", "--no-up", "--kind", "replicaset"], "invalid choice: 'replicaset'"),
        (["compare", "--no-up", "--triggers", "set-image,node-down", "--parallel", "2"], "run node-down cells one at a time"),
        (["run", "--no-up", "--discovery", "dns", "--client", "host"], "discovery dns needs the client in a pod"),
        (["run", "--no-up", "--dns-cache", "30"], "a DNS cache time goes with discovery dns"),
        (["run", "--no-up", "--discovery", "consul"], "invalid choice: 'consul'"),
        (["run", "--no-up", "--discovery", "dns", "--dns-cache", "2h"], "DNS cache time 7200s: must be in [0, 3600] s"),
        (["run", "--no-up", "--discovery", "registry", "--client", "host"], "discovery registry needs the client in a pod"),
        (["run", "--no-up", "--discovery", "registry", "--registry-fetch", "0"], "registry fetch interval 0s: must be in (0, 3600] s"),
        (["run", "--no-up", "--discovery", "registry"], "variant 'naive': --discovery registry needs a service registry among its objects"),
        (
            ["run", "--no-up", "--via", "ingress", "--client", "pod"],
            "via ingress: the client on the host sends to the controller's NodePort",
        ),
        (["run", "--no-up", "--via", "ingress-retry", "--mode", "h2"], "via ingress-retry: mode h2 is not routed through the ingress yet"),
        (["run", "--no-up", "--via", "nginx"], "invalid choice: 'nginx'"),
        (["variants", "--workload", "-"], "YAML from standard input ('-') is not supported: save it to a file first"),
        (["run", "--no-up", "--workload", "-"], "YAML from standard input ('-') is not supported"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], no_cluster: None, argv: list[str], expect: str) -> None:
    assert main(argv) == 2
    assert expect in one_error_line(capsys)


def _failing_verb(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """`report` raises `error` once its flags are parsed."""

    async def fail(args: object) -> int:
        raise error

    monkeypatch.setitem(VERBS, "report", replace(VERBS["report"], run=fail))


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("--out x: cannot write there"), 2),
        (ClusterError("the API server is unreachable"), 3),
        (CommandFailed("kind create cluster failed (exit 1): no space", 1, "no space"), 3),
        (EnvironmentProblem("docker is not running"), 3),
        (RolloutError("rollout of deployment 'web': not done within 180s"), 3),
        (ApiError("failed to scale deployment 'web' to 5: 409 Conflict", 409), 3),
        (HarnessError("the load process failed (exit 1)"), 3),
    ],
)
def test_harness_errors_exit_2_for_usage_and_3_for_infrastructure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, error: HarnessError, code: int
) -> None:
    _failing_verb(monkeypatch, error)
    assert main(["report", "results"]) == code
    assert one_error_line(capsys) == f"rollout-harness: error: {error}"


def test_a_missing_cluster_exits_3(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`run --no-up` with no cluster brought up: a ClusterError (infrastructure), not a usage error."""
    monkeypatch.setenv("RH_CACHE", str(tmp_path / "cache"))
    assert main(["run", "--no-up", "--out", str(tmp_path / "out")]) == 3
    assert f"no kubeconfig at {tmp_path / 'cache'}" in one_error_line(capsys)


def _internal_error_line(capsys: pytest.CaptureFixture[str]) -> Path:
    """The one line of an internal error; the log file it names."""
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    (line,) = captured.err.splitlines()
    m = re.fullmatch(r"rollout-harness: internal error: RuntimeError: boom in two lines; details in (\S+)", line)
    assert m, line
    return Path(m[1])


def test_an_internal_error_is_one_line_naming_a_log_with_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RH_CACHE", str(tmp_path))
    _failing_verb(monkeypatch, RuntimeError("boom in\ntwo lines"))
    assert main(["report", "results"]) == 4
    log = _internal_error_line(capsys)
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "arguments: ['report', 'results']" in text and "RuntimeError: boom in\ntwo lines" in text
    assert "Traceback (most recent call last)" in text and "in fail" in text


def test_an_internal_error_logs_to_a_temporary_file_when_the_cache_is_not_writable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RH_CACHE", "/proc/rh-cannot-write")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _failing_verb(monkeypatch, RuntimeError("boom in\ntwo lines"))
    assert main(["report", "results"]) == 4
    log = _internal_error_line(capsys)
    assert log.parent == tmp_path and "RuntimeError: boom" in log.read_text()


def test_an_internal_error_with_nowhere_to_log_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_CACHE", "/proc/rh-cannot-write")
    monkeypatch.setattr(tempfile, "tempdir", "/proc/rh-cannot-write")
    _failing_verb(monkeypatch, RuntimeError("boom"))
    assert main(["report", "results"]) == 4
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("rollout-harness: internal error: RuntimeError: boom; no log written (") and line.endswith(
        "-vv shows the traceback"
    )


def test_an_internal_error_shows_its_traceback_at_vv(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RH_CACHE", str(tmp_path))
    _failing_verb(monkeypatch, RuntimeError("boom"))
    assert main(["-vv", "report", "results"]) == 4
    err = capsys.readouterr().err
    assert "rollout-harness: internal error: RuntimeError: boom; details in " in err and "Traceback" in err


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["load", "http://127.0.0.1:9/", "--rate", "0"], "rollout-harness load [options] url"),
        (["load"], "rollout-harness load [options] url"),
        (["-v", "run", "--no-up", "--bogus"], "rollout-harness run [options]"),
        (["run", "--trials", "x"], "rollout-harness run [options]"),
        (["report"], "rollout-harness report [options] PATH [PATH ...]"),
        (["check", "a.toml", "b.toml"], "rollout-harness check [options] [file]"),
        (["completion", "fish"], "rollout-harness completion [options] {bash,zsh}"),
        (["launch"], "rollout-harness [options] {" + ",".join(VERBS) + "} ..."),
        (["--bogus"], "rollout-harness [options] {" + ",".join(VERBS) + "} ..."),
    ],
)
def test_what_the_parser_refuses_is_followed_by_the_usage_line(capsys: pytest.CaptureFixture[str], argv: list[str], usage: str) -> None:
    """The usage line of the command refused (a verb's, also for an unknown flag after it, which argparse would hand
    up to the top level), one line however many flags it has, pointing at its --help."""
    assert main(argv) == 2
    _, line = capsys.readouterr().err.splitlines()
    prog = usage.split(" [options]")[0]
    assert line == f"usage: {usage}  ({prog} --help lists them)"


def test_a_usage_error_found_after_parsing_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "ftp://127.0.0.1/"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "rollout-harness: error: bad URL 'ftp://127.0.0.1/': must start with http:// or https://"
    ]


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    codes = capsys.readouterr().out.split("exit codes:")[1]
    assert [ln.split()[0] for ln in codes.strip().splitlines()] == ["0", "1", "2", "3", "4", "130", "143"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["load", "http://127.0.0.1:9/", "--out", "{dir}"], "--out"),
        (["load", "http://127.0.0.1:9/", "--records", "{dir}"], "--records"),
        (["load", "http://127.0.0.1:9/", "--records", "/proc/version"], "--records /proc/version"),
        (["report", "{saved}", "--junit", "{dir}"], "--junit"),
        (["run", "--no-up", "--junit", "{dir}"], "--junit"),
        (["compare", "--no-up", "--out", "{file}"], "--out"),
    ],
)
def test_output_targets_are_checked_before_any_work(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], flag: str) -> None:
    """A directory given for a file, or a file that cannot be written, is refused in one line naming its flag, before
    the load or the table (report prints nothing)."""
    paths = {"dir": tmp_path / "a-dir", "file": tmp_path / "a-file", "saved": _saved(tmp_path)}
    paths["dir"].mkdir()
    paths["file"].write_text("")
    argv = [a.format(**paths) for a in argv]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"rollout-harness: error: {flag}"), line
    assert "cannot write there" in line


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A bad input that got past its check would find no cluster to run on (--no-up: no kubeconfig) instead of
    running cells on the harness's cluster, if one is up."""
    monkeypatch.setenv("RH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBECONFIG", raising=False)


UDP_ONLY = {"kind": "List", "items": [yaml.safe_load(DEP), yaml.safe_load(SVC.replace("{port: 80}", "{port: 53, protocol: UDP}"))]}


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a YAML text file (byte 0x89 at offset 0 is not UTF-8)"),
        (BOMB.encode(), "YAML refused: aliases expand to more than 10,000 nodes"),
        (yaml.safe_dump(UDP_ONLY).encode(), "Service 's' has no TCP port (53/UDP); the load is HTTP over TCP"),
        (DEP.replace("apps/v1", "extensions/v1beta1").encode(), "is extensions/v1beta1, which Kubernetes no longer serves"),
    ],
)
@pytest.mark.parametrize("verb", [["variants"], ["run", "--no-up"]])
def test_bad_workload_file_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], no_cluster: None, tmp_path: Path, verb: list[str], content: bytes, expect: str
) -> None:
    (tmp_path / "w.yaml").write_bytes(content)
    assert main([*verb, "--workload", str(tmp_path / "w.yaml")]) == 2
    assert expect in one_error_line(capsys)


def test_report_on_missing_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert main(["report", str(missing)]) == 2
    assert f"no such results file or directory: {missing}" in one_error_line(capsys)


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


def _saved(tmp_path: Path) -> Path:
    """naive loses 1 of 601 in each of 2 trials (0.17 %); best-practice loses nothing in 2 trials."""
    for t in (1, 2):
        replace(run(records({400: "refused"})), trial=t).write(tmp_path / "r" / f"naive-{t}.json")
        replace(run(records()), variant="best-practice", trial=t).write(tmp_path / "r" / f"bp-{t}.json")
    return tmp_path / "r"


@pytest.mark.parametrize(
    ("budget", "code", "over"),
    [
        ([], 0, []),
        (["--max-failures", "0"], 1, ["naive"]),
        (["--max-failures", "1"], 0, []),
        (["--max-fail-pct", "0.1"], 1, ["naive"]),
        (["--max-fail-pct", "0.2"], 0, []),
    ],
)
def test_the_gate_exits_1_when_a_cell_breaks_the_budget(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, budget: list[str], code: int, over: list[str]
) -> None:
    assert main(["report", str(_saved(tmp_path)), *budget]) == code
    captured = capsys.readouterr()
    rows = {ln.split("|")[3 if budget else 2].strip(): ln for ln in captured.out.splitlines() if ln.startswith("| ")}
    if budget:
        assert rows["variant"].split("|")[1].strip() == "budget"
        assert sorted(v for v, ln in rows.items() if "OVER" in ln.split("|")[1]) == over
        assert ("cells over" if over else "cells within") in captured.err
    else:
        assert "budget" not in rows["variant"]


def test_formats_and_junit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    saved = _saved(tmp_path)
    assert main(["report", str(saved), "--format", "json", "--max-failures", "0", "--junit", str(tmp_path / "j.xml")]) == 1
    doc = json.loads(capsys.readouterr().out)
    cells = {c["variant"]: c for c in doc["cells"]}
    assert doc["schema"] == "rollout-harness/cells@3" and doc["budget"] == {"max_failures": 0, "max_fail_pct": None, "certify": None}
    assert cells["naive"]["verdict"] == "lossy" and cells["naive"]["lost_max"] == 1 and cells["naive"]["over_budget"] == "lost 1 > 0"
    assert cells["best-practice"]["verdict"] == "lossless" and cells["best-practice"]["over_budget"] == ""
    assert (cells["naive"]["rollouts"], cells["naive"]["rollouts_lost"], cells["naive"]["p_lose_upper"]) == (2, 2, None)
    assert cells["naive"]["p_lose_ci"] == pytest.approx([0.025**0.5, 1.0]) and cells["naive"]["lost_per_rollout_ci"] == [1, 1]
    assert cells["best-practice"]["p_lose_upper"] == pytest.approx(1 - 0.05**0.5) and "upper_bound_pct" not in cells["naive"]
    suite = ET.parse(tmp_path / "j.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    failing = [c.get("classname") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failing == ["rollout-harness.naive"]
    said = [c.findtext("system-out") for c in suite.iter("testcase")]
    assert said[0] == "lossy: 2 of 2 rollouts lost requests; P(rollout loses) 2/2: 15-100 %; lost/rollout 1 (same in all 2); lost 1-1"
    assert said[1] == "lossless: 0 of 2 rollouts lost a request; P(rollout loses) ≤ 78 %; lost/rollout 0; lost 0-0"
    assert main(["report", str(saved), "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [(r["variant"], r["verdict"], r["lost_max"], r["lost_refused"]) for r in rows] == [
        ("naive", "lossy", "1", "1"),
        ("best-practice", "lossless", "0", "0.0"),
    ]
    assert [(r["rollouts"], r["rollouts_lost"], r["p_lose_upper"], r["p_lose_ci_low"]) for r in rows] == [
        ("2", "2", "", str(round(0.025**0.5, 6))),
        ("2", "0", str(round(1 - 0.05**0.5, 6)), ""),
    ]
    assert [r["lost_per_rollout_mean"] for r in rows] == ["1.0", "0.0"] and "upper_bound_pct" not in rows[0]


def test_main_leaves_the_callers_logging_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """main() writes its diagnostics to stderr through the `harness` logger only, and puts every logger back as it
    found it: a program that embeds main() keeps its root logger, and its handlers see no second copy."""
    root = logging.getLogger()
    seen: list[logging.LogRecord] = []
    mine = logging.Handler(logging.DEBUG)
    mine.emit = seen.append  # type: ignore[method-assign,assignment]
    root.addHandler(mine)
    names = ("harness", "kubernetes", "urllib3", "asyncio")
    try:
        before = (list(root.handlers), root.level, [(logging.getLogger(n).level, logging.getLogger(n).handlers[:]) for n in names])
        assert main(["report", str(_saved(tmp_path)), "--max-failures", "1"]) == 0
        after = (list(root.handlers), root.level, [(logging.getLogger(n).level, logging.getLogger(n).handlers[:]) for n in names])
    finally:
        root.removeHandler(mine)
    assert after == before
    assert all(logging.getLogger(n).propagate for n in names)
    assert "all 2 cells within" in capsys.readouterr().err
    assert not [r for r in seen if r.name.startswith("harness")]


def test_verbosity_flags_go_before_or_after_the_verb(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    saved, missing = str(_saved(tmp_path)), str(tmp_path / "nope")
    for argv in (["-q", "report", saved, "--max-failures", "1"], ["report", saved, "--max-failures", "1", "-q"]):
        assert main(argv) == 0
        assert capsys.readouterr().err == "", argv
    for argv in (["-vv", "report", missing], ["report", missing, "-vv"], ["-v", "report", "-v", missing]):
        assert main(argv) == 2
        err = capsys.readouterr().err  # -vv: debug lines too (asyncio's among them), and the error's traceback
        lines = err.splitlines()
        assert any(ln.startswith("rollout-harness: error: no such results file or directory") for ln in lines) and "Traceback" in err, argv


def test_every_verb_has_a_description_and_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in VERBS:
        with pytest.raises(SystemExit) as e:
            main([verb, "--help"])
        assert e.value.code == 0
        usage = capsys.readouterr().out
        assert f"rollout-harness {verb}" in usage.split("example")[1], verb


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
    assert main([*argv, "--max-failures", "9"]) == 1, "10 refused break a budget of 9"
    s = json.loads(out.read_text())["summary"]
    assert (s["requests"], s["failed"], s["by_kind"]) == (10, 10, {"refused": 10})
    assert len(records.read_text().splitlines()) == 10
    assert re.search(r"\|\s+refused\s+\|\s+10\s+\|", capsys.readouterr().out)


def test_variants_lists_names_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["variants"]) == 0
    rows = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in capsys.readouterr().out.splitlines()[2:]}
    assert len(rows) == 27 and rows["naive"] and "PDB" in rows["best-practice"]
    assert main(["variants", "--workload", "tests/examples/shop-api.yaml"]) == 0
    rows = {ln.split("|")[1].strip(): ln.split("|")[2].strip() for ln in capsys.readouterr().out.splitlines()[2:]}
    assert rows["as-is"] == "your workload as written" and "maxUnavailable 1" in rows["pdb"] and len(rows) >= 11


def test_client_pod_manifest_pulls_only_a_pushed_image() -> None:
    from harness.clientpod import manifest

    ours = manifest("rollout-harness/client:abc", {}, "app=web", own=True)
    theirs = manifest("registry.example/rh-client:abc", {}, "app=web", own=False, pulled=True)
    assert ours["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert theirs["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "requiredDuringSchedulingIgnoredDuringExecution" in ours["spec"]["affinity"]["nodeAffinity"]
    assert "preferredDuringSchedulingIgnoredDuringExecution" in theirs["spec"]["affinity"]["nodeAffinity"]


def test_main_runs_in_a_worker_thread(tmp_path: Path) -> None:
    """A library caller (or a test) may run main() in a worker thread, where signal handlers cannot be set: it
    runs without one instead of failing."""
    missing = tmp_path / "nope"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(main, ["report", str(missing)]).result(timeout=30) == 2


@pytest.mark.integration
def test_sigterm_cancels_like_ctrl_c_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM (a CI runner cancelling, `kill`) runs the same cleanup as Ctrl-C: the main task is cancelled, the
    process says so in one line and exits 143. The signal goes once the load has started (its first log line)."""
    cmd = [sys.executable, "-m", "harness", "load", f"http://127.0.0.1:{free_port()}/", "--rate", "20", "--duration", "60s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # "[load] http://...: 1200 requests at 20/s": the load loop is running
        assert first.startswith("[load]"), first
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=15)
    finally:
        proc.kill()
    err = first + rest
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "rollout-harness: terminated; cleaned up" and "Traceback" not in err


@pytest.mark.integration
def test_an_unreachable_cluster_is_one_line_naming_its_url(capsys: pytest.CaptureFixture[str], no_cluster: None, tmp_path: Path) -> None:
    """A kubeconfig whose API server refuses connections (a closed port here: no cluster needed) fails before any cell,
    in one line with the server's URL and why."""
    port = free_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    assert main(["run", "--kubeconfig", str(kubeconfig), "--client", "pod", "--out", str(tmp_path / "out")]) != 0  # infrastructure
    assert f"cannot reach the API server https://127.0.0.1:{port}: Connection refused" in one_error_line(capsys)
