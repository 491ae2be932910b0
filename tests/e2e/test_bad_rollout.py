"""A rollout that never completes is one clear error line and a non-zero exit, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.resources import manifests_dir
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_never_ready_rollout_fails_fast_and_cleans_up(tmp_path: Path, target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(manifests_dir(), root)
    (root / "variants" / "never-ready.yaml").write_text(
        "name: never-ready\ndescription: the new release hangs, so the HTTP readiness probe never passes\n"
        'base: readiness\nupdate_env: {HANG: "1"}\n'
    )
    args = ["run", "--variant", "never-ready", "--rollout-timeout", "15s", "--no-up", "--baseline", "1s"]
    code = await asyncio.to_thread(main, [*args, "--manifests", str(root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 3  # a RolloutError outside a matrix: infrastructure, not usage
    errors = [ln for ln in err if ln.startswith("rollout-harness: error:")]
    assert len(errors) == 1 and "not done within 15s" in errors[0], err
    assert "updated" in errors[0], "the error must say how far the rollout got"
    assert not any("Traceback" in ln for ln in err)
    leftovers = await asyncio.to_thread(target.kube.managed_namespaces, "rollout-harness.io/variant=never-ready")
    assert all(ns.terminating for ns in leftovers), "the run's namespace must be deleted"
