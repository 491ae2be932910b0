"""Two `rollout-harness run` processes started together on one cluster: each deletes only its own namespace, gets
its own NodePort, their drains take turns, and both results are right (naive loses, best-practice does not)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from harness.model import Status
from harness.results import RunResult, load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def _run(variant: str, out: Path) -> tuple[int, str]:
    args = ["run", "--variant", variant, "--trigger", "drain", "--no-up", "--rate", "100", "--baseline", "2s", "--out", str(out)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await proc.communicate()
    return proc.returncode or 0, output.decode()


async def test_two_runs_at_once_both_complete_with_correct_results(tmp_path: Path, target: Target) -> None:
    (naive_code, naive_out), (best_code, best_out) = await asyncio.gather(
        _run("naive", tmp_path / "naive"), _run("best-practice", tmp_path / "best")
    )
    assert naive_code == 0, naive_out
    assert best_code == 0, best_out
    (naive,) = load_results(tmp_path / "naive")
    (best,) = load_results(tmp_path / "best")

    def why(r: RunResult) -> str:
        return f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"

    assert naive.status is Status.USED and naive.lost > 0, why(naive)
    assert best.status is Status.USED and best.lost == 0, why(best)
    for r in (naive, best):
        assert any(e.source == "harness" and e.name == "trigger" and e.state.startswith("drain ") for e in r.events), why(r)
    leftovers = await asyncio.to_thread(target.kube.managed_namespaces)
    assert all(ns.terminating for ns in leftovers), [ns.name for ns in leftovers]
