"""harness.leftovers on this host: records directories of dead processes are found and removed, a live one's kept;
load workers are found (a real orphaned process); tokens name processes as owners do."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import dead_owner

from harness import leftovers, owner


def _token(own: str) -> str:
    parts = own.split()
    return f"{parts[1]}.{parts[2]}"


def test_a_token_names_this_process_and_only_a_dead_one_is_gone() -> None:
    assert owner.token().split(".")[0].isdigit()
    assert not owner.token_gone(owner.token())
    assert not owner.token_gone("not-a-token") and not owner.token_gone("12.x")


@pytest.mark.integration  # a real process that has ended
def test_records_of_dead_processes_are_stale_a_live_ones_not(tmp_path: Path) -> None:
    dead = tmp_path / f"{leftovers.RECORDS_PREFIX}{_token(dead_owner())}-abc"
    live = tmp_path / f"{leftovers.RECORDS_PREFIX}{owner.token()}-def"
    other = tmp_path / "rh-records-unknown"
    for d in (dead, live, other):
        d.mkdir()
    assert owner.token_gone(_token(dead_owner()))
    assert leftovers.stale_records(tmp_path) == [dead]


@pytest.mark.integration  # a real orphaned process
def test_an_orphaned_load_worker_is_counted() -> None:
    marker = f"harness.loadworker-test-{time.monotonic_ns()}"
    # the shell exits at once: its child is adopted by init (or a subreaper), as a killed harness's worker would be
    script = f"{sys.executable} -c 'import time; time.sleep(20)' harness.loadworker {marker} >/dev/null 2>&1 &"
    subprocess.run(["sh", "-c", script], check=True, timeout=10)
    try:
        deadline = time.monotonic() + 10
        while not (pids := subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False).stdout.split()):
            assert time.monotonic() < deadline, "the process did not start"
            time.sleep(0.1)
        assert f"pid {pids[0]} " in " ".join(leftovers.workers()) + " "
    finally:
        subprocess.run(["pkill", "-f", marker], check=False, timeout=10)


def test_found_counts_every_kind() -> None:
    found = leftovers.Found(namespaces=["a", "b"], guard_rules=["r"])
    assert found.total() == 3 and found.counts()["namespaces"] == 2 and set(found.counts()) >= {"records", "workers", "host_settings"}
