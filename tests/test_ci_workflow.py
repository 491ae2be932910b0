"""docs/ci/github-actions.yml, the workflow users copy, says only what the tool accepts: every `rollout-harness`
command in it parses with the real parser, each of its flags is in that verb's --help, and the versions it installs
are the ones the tool pins. Nothing is run but the parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import resources
from harness.cli import build_parser, main
from harness.pinned import Pinned

WORKFLOW = Path(__file__).resolve().parents[1] / "docs" / "ci" / "github-actions.yml"


def _doc() -> dict[Any, Any]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(doc, dict)
    return doc


def _steps() -> list[dict[str, Any]]:
    (job,) = _doc()["jobs"].values()
    return list(job["steps"])


def commands() -> list[list[str]]:
    """Each `rollout-harness ...` command line of the workflow's run steps, from the verb on."""
    out = []
    for step in _steps():
        for line in step.get("run", "").replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if "rollout-harness" in words:
                out.append(words[words.index("rollout-harness") + 1 :])
    return out


def _help(verb: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_the_workflow_is_a_complete_job() -> None:
    doc = _doc()
    assert doc["name"] and (doc.get("on") or doc.get(True))  # PyYAML reads the key `on` as True
    uses = [s["uses"].split("@")[0] for s in _steps() if "uses" in s]
    assert {"actions/checkout", "actions/setup-python", "actions/cache", "actions/upload-artifact"} <= set(uses)
    assert all("@" in s["uses"] for s in _steps() if "uses" in s)
    assert [c[0] for c in commands()] == ["check", "up", "load-image", "compare", "down"]


def test_every_command_parses_and_its_flags_are_in_the_verbs_help(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in commands():
        build_parser().parse_args(cmd)  # a UsageError (unknown flag, bad choice) fails the test
        text = _help(cmd[0], capsys)
        for flag in (w.split("=")[0] for w in cmd[1:] if w.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), f"{flag} is not in `rollout-harness {cmd[0]} --help`"


def test_up_takes_the_stock_path_and_the_junit_report_is_uploaded() -> None:
    by_verb = {c[0]: c for c in commands()}
    assert by_verb["up"][1:] == ["--offline", "no"]
    compare = by_verb["compare"]
    junit = compare[compare.index("--junit") + 1]
    upload = next(s for s in _steps() if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and junit in upload["with"]["path"].split()
    cache = next(s for s in _steps() if s.get("uses", "").startswith("actions/cache"))
    assert cache["with"]["path"] == "~/.cache/rollout-harness"


def test_the_installed_kind_and_kubectl_are_the_pinned_ones() -> None:
    env, v = _doc()["env"], resources.versions()
    assert env["KIND_VERSION"] == v["KIND_VERSION"]
    assert env["KUBECTL_VERSION"] == Pinned.parse(v["STOCK_NODE_IMAGE"]).tag
