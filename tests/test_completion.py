"""`completion`: the script shtab generates from the parser, sourced in a real bash that completes as a user's would
(the function `complete -F` registered, called with COMP_WORDS as readline fills them): every verb, a verb's flags,
a flag's choices and file names where a flag takes a path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cli import VERBS, main

pytestmark = pytest.mark.integration  # a real bash process


def script(capsys: pytest.CaptureFixture[str], shell: str) -> str:
    assert main(["completion", shell]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return out.out


def complete(script_file: Path, words: list[str], cwd: Path) -> list[str]:
    """What bash offers for the last of `words` (the command line up to the cursor), as Tab would."""
    line = " ".join(words)
    program = f"""
source {script_file}
fn=$(complete -p rollout-harness | sed -E 's/.* -F ([^ ]+) .*/\\1/')
COMP_WORDS=({" ".join(f"'{w}'" for w in words)}); COMP_CWORD={len(words) - 1}
COMP_LINE='{line}'; COMP_POINT={len(line)}
"$fn" rollout-harness '{words[-1]}' '{words[-2]}'
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [w for w in r.stdout.splitlines() if w]


def test_bash_script_parses_and_completes_verbs_flags_choices_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "rollout-harness.bash"
    f.write_text(script(capsys, "bash"))
    syntax = subprocess.run(["bash", "-n", str(f)], capture_output=True, text=True, timeout=30)
    assert syntax.returncode == 0, syntax.stderr

    assert complete(f, ["rollout-harness", ""], tmp_path) == list(VERBS)
    assert complete(f, ["rollout-harness", "c"], tmp_path) == ["compare", "check", "client-image", "census", "completion"]
    assert complete(f, ["rollout-harness", "run", "--tri"], tmp_path) == ["--trigger", "--trials"]
    assert complete(f, ["rollout-harness", "compare", "--mode"], tmp_path) == ["--modes"]
    assert complete(f, ["rollout-harness", "run", "--mode", ""], tmp_path) == ["new", "keepalive", "h2", "grpc"]
    assert complete(f, ["rollout-harness", "completion", ""], tmp_path) == ["bash", "zsh"]
    (tmp_path / "gate.toml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert complete(f, ["rollout-harness", "check", "g"], tmp_path) == ["gate.toml"]
    assert complete(f, ["rollout-harness", "run", "--workload", "n"], tmp_path) == ["notes.txt"]


def test_zsh_script_names_the_command_and_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    text = script(capsys, "zsh")
    assert text.startswith("#compdef rollout-harness\n")
    assert all(f"\n    {verb}:'" in text for verb in VERBS), [v for v in VERBS if f"\n    {v}:'" not in text]


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "fish"]) == 2
    assert "invalid choice: 'fish'" in capsys.readouterr().err
