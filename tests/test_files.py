"""Output files are written whole or not at all (harness.files.write_atomic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem
from harness.files import write_atomic


def test_writes_text_or_parts_and_leaves_nothing_else(tmp_path: Path) -> None:
    write_atomic(tmp_path / "sub" / "a.json", "{}\n")
    write_atomic(tmp_path / "sub" / "b.jsonl", (f"{i}\n" for i in range(3)))
    assert (tmp_path / "sub" / "a.json").read_text() == "{}\n" and (tmp_path / "sub" / "b.jsonl").read_text() == "0\n1\n2\n"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.json", "b.jsonl"]


def test_a_write_that_fails_leaves_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_atomic(path, "old\n")

    def parts() -> Iterator[str]:
        yield "new, half"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(path, parts())
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_place_that_cannot_be_written_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match=r"^cannot write /proc/rh-nope/r.json: "):
        write_atomic(Path("/proc/rh-nope/r.json"), "{}")
