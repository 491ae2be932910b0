"""ci/rh test exits with pytest's exit code. Its EXIT trap stops the background Go builds (ci/prebuild.sh) that still
run, and under ci/rh's `set -e` a `kill` of a build that had already ended (the usual case: they finish long before
the e2e tier does) once made the script exit 1 after every test had passed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RH = Path(__file__).resolve().parents[1] / "ci" / "rh"


def _stopper() -> str:
    (line,) = [s.strip() for s in RH.read_text().splitlines() if s.strip().startswith("stop_prebuild()")]
    return line


@pytest.mark.parametrize("rc", [0, 3])
def test_stopping_builds_that_already_ended_keeps_the_exit_code(tmp_path: Path, rc: int) -> None:
    ended = subprocess.run(["bash", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    pids = tmp_path / "pids"
    pids.write_text(f"{ended}\n")
    script = f"set -euo pipefail\nPIDS={pids}\n{_stopper()}\ntrap stop_prebuild EXIT\nexit {rc}\n"
    assert subprocess.run(["bash", "-c", script], check=False).returncode == rc
    assert not pids.exists(), "the PID file goes with the builds"
