"""ci/rh test exits with pytest's exit code. Its EXIT trap stops the background Go builds (ci/prebuild.sh) and the
background `up` that still run, and under ci/rh's `set -e` a `kill` of a build that had already ended (the usual
case: they finish long before the e2e tier does) once made the script exit 1 after every test had passed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RH = Path(__file__).resolve().parents[1] / "ci" / "rh"


def _stopper() -> str:
    """ci/rh's stop_background function, as written there."""
    lines = RH.read_text().splitlines()
    start = next(i for i, s in enumerate(lines) if s.strip().startswith("stop_background() {"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
    return "\n".join(lines[start : end + 1])


@pytest.mark.parametrize("up", ["", "ended"])
@pytest.mark.parametrize("rc", [0, 3])
def test_stopping_builds_that_already_ended_keeps_the_exit_code(tmp_path: Path, rc: int, up: str) -> None:
    ended = subprocess.run(["bash", "-c", "echo $$"], capture_output=True, text=True, check=True).stdout.strip()
    pids, up_dir = tmp_path / "pids", tmp_path / "up"
    pids.write_text(f"{ended}\n")
    up_dir.mkdir()
    up_pid = ended if up else ""  # an `up` that has ended (not this shell's child any more: `wait` fails)
    script = f"set -euo pipefail\nPIDS={pids} UP_DIR={up_dir} UP_PID={up_pid}\n{_stopper()}\ntrap stop_background EXIT\nexit {rc}\n"
    assert subprocess.run(["bash", "-c", script], check=False).returncode == rc
    assert not pids.exists() and not up_dir.exists(), "the PID file and up's directory go with the builds"
