"""The documentation: the CLI reference is what the parser generates, and the site's build is strict (a broken link,
anchor or repository path fails it: a known answer on a copy of the docs with one of each)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import docgen

REPO = Path(__file__).resolve().parents[1]


def test_cli_reference_is_what_the_parser_generates() -> None:
    page = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert page == docgen.page(), f"docs/cli.md is stale: regenerate it with `{docgen.REGENERATE}`"


def test_cli_reference_has_every_verb_flag_and_exit_code() -> None:
    from harness.cli import VERBS, build_parser
    from harness.cli.verb import verb_parsers
    from harness.errors import ExitCode

    page = docgen.page()
    for name, parser in verb_parsers(build_parser()).items():
        section = page.split(f"\n## {name}\n")[1].split("\n## ")[0]
        flags = {s for a in parser._actions for s in a.option_strings if s not in ("-h", "--help")}
        assert all(f"`{flag}" in section for flag in flags), (name, sorted(f for f in flags if f"`{f}" not in section))
        assert VERBS[name].examples.splitlines()[1].strip() in section
    assert all(f"\n| {c.value} | {c.meaning} |" in page for c in ExitCode)


BROKEN = """

[a](nope.md) [b](findings.md#no-such-heading) [c](../README.md#no-such-heading) [d](../NOPE.md) [e](#nor-here)
"""


@pytest.mark.integration  # mkdocs in a process of its own
@pytest.mark.timeout(120)
def test_the_strict_build_passes_and_fails_on_each_kind_of_broken_link(tmp_path: Path) -> None:
    for rel in ("mkdocs.yml", "README.md", "bench/README.md", "docs", "manifests"):
        src, dst = REPO / rel, tmp_path / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)

    def build() -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=100)

    ok = build()
    assert ok.returncode == 0, ok.stderr
    with (tmp_path / "docs" / "tests.md").open("a", encoding="utf-8") as f:
        f.write(BROKEN)
    broken = build()
    assert broken.returncode != 0
    for said in (
        "link 'nope.md', but the target is not found",
        "does not contain an anchor '#no-such-heading'",
        "'../README.md#no-such-heading': README.md has no heading '#no-such-heading'",
        "'../NOPE.md', which is not in the repository",
        "link '#nor-here', but there is no such anchor on this page",
    ):
        assert said in broken.stderr, (said, broken.stderr)
