"""A rollout that never completes is one clear error line and a non-zero exit, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from harness import cluster
from harness.cli import main
from harness.kube import Kube
from harness.manifests import BUNDLED

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_never_ready_rollout_fails_fast_and_cleans_up(
    tmp_path: Path, kube: Kube, kind_cluster: cluster.ClusterInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(BUNDLED, root)
    (root / "variants" / "never-ready.yaml").write_text(
        "name: never-ready\ndescription: the new release hangs, so the HTTP readiness probe never passes\n"
        'base: readiness\nupdate_env: {HANG: "1"}\n'
    )
    args = [
        "run",
        "--variant",
        "never-ready",
        "--trigger",
        "set-image",
        "--rollout-timeout",
        "15s",
        "--no-up",
        "--baseline",
        "1s",
        "--manifests",
        str(root),
        "--out",
        str(tmp_path / "out"),
    ]
    code = await asyncio.to_thread(main, args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    errors = [ln for ln in err if ln.startswith("rollout-harness: error:")]
    assert len(errors) == 1 and "did not complete within 15s" in errors[0], err
    assert not any("Traceback" in ln for ln in err)
    leftovers = await asyncio.to_thread(kube.core.list_namespace, label_selector="rollout-harness.io/variant=never-ready")
    assert all(ns.status.phase == "Terminating" for ns in leftovers.items), "the run's namespace must be deleted"
