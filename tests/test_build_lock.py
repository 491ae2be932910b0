"""ci/build-lock.sh: one build of a binary at a time, and a caller that needs a binary a background build (ci/prebuild.sh,
nice 19) is making raises that build to its own priority while it waits, instead of waiting on a build that only gets
the CPU nothing else wants (on a cold machine `up` waited minutes for metrics-server that way). Real processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

LOCK_SH = Path(__file__).resolve().parents[1] / "ci" / "build-lock.sh"


def _nice(pid: int) -> int:
    return int(subprocess.run(["ps", "-o", "ni=", "-p", str(pid)], capture_output=True, text=True, check=True).stdout)


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="lowering a nice value needs root")
def test_a_caller_raises_the_background_build_it_waits_for_then_takes_the_lock(tmp_path: Path) -> None:
    lock, held, done = tmp_path / "bin.lock", tmp_path / "held", tmp_path / "done"
    hold = f". {LOCK_SH}; build_lock {lock}; touch {held}; for i in $(seq 100); do [ -f {done} ] && break; sleep 0.1; done"
    holder = subprocess.Popen(["setsid", "nice", "-n", "19", "bash", "-c", hold])
    try:
        for _ in range(100):
            if held.exists():
                break
            time.sleep(0.05)
        assert held.exists() and _nice(holder.pid) == 19
        caller = subprocess.Popen(
            ["nice", "-n", "5", "bash", "-c", f". {LOCK_SH}; build_lock {lock}; echo taken"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(100):
            if _nice(holder.pid) == 5:
                break
            time.sleep(0.05)
        assert _nice(holder.pid) == 5, "the holder runs at the caller's priority"
        assert caller.poll() is None, "the caller waits while the holder builds"
        done.touch()
        out, err = caller.communicate(timeout=30)
        assert out == "taken\n" and "bin is being built in the background" in err, err
    finally:
        done.touch()
        holder.wait(timeout=30)


@pytest.mark.integration
def test_the_cold_build_leaves_crictl_to_the_background_build_that_holds_its_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ci/build-crictl.sh, called by `up` beside the Kubernetes binaries while ci/prebuild.sh's build of crictl holds the
    lock: it says so and exits 0 at once, without waiting (crictl is optional; `up` copies it onto the nodes later)."""
    from harness import provision

    script = LOCK_SH.parent / "build-crictl.sh"
    monkeypatch.setenv("RH_CACHE", str(tmp_path))
    out = provision.build_dir() / "bin" / "crictl"  # where the script builds it for the pinned versions
    out.parent.mkdir(parents=True)
    with subprocess.Popen(["flock", f"{out}.lock", "sleep", "30"]) as holder:
        try:
            for _ in range(100):
                if subprocess.run(["flock", "-n", f"{out}.lock", "true"], check=False).returncode != 0:
                    break
                time.sleep(0.05)
            t0 = time.monotonic()
            done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=10, check=False)
            assert done.returncode == 0 and "being built in the background; not waited for" in done.stderr, done.stderr
            assert time.monotonic() - t0 < 5 and not out.exists()
        finally:
            holder.kill()
