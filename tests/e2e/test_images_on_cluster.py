"""`rollout-harness load-image` on the real cluster: a local image no registry holds reaches every node's image
store (containerd's k8s.io namespace), and an image docker lacks is one line and exit 2, before anything is loaded.
`up` puts crictl (built apart from the node image: ci/build-crictl.sh) on a node that lacks it, and kind then skips
loading an image every node has; it gives the control-plane node's container its CPU weight, on a cluster made
before that weight as on a new one."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import cluster, provision
from harness.cli import main

pytestmark = pytest.mark.e2e
LOCK_SH = Path(__file__).resolve().parents[2] / "ci" / "build-lock.sh"


@pytest.fixture
def tiny_image(tmp_path: Path) -> Iterator[str]:
    tag = f"rh-test-load:{uuid.uuid4().hex[:8]}"
    (tmp_path / "f").write_text("rollout-harness load-image test\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    subprocess.run(["docker", "build", "-q", "-t", tag, str(tmp_path)], check=True, capture_output=True, timeout=120)
    try:
        yield tag
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], check=False, capture_output=True, timeout=60)
        for node in cluster.node_names():
            rm = ["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "rm", f"docker.io/library/{tag}"]
            subprocess.run(rm, check=False, capture_output=True, timeout=60)


def test_load_image_puts_a_local_image_on_every_node(kind_cluster: cluster.ClusterInfo, tiny_image: str) -> None:
    assert main(["load-image", tiny_image]) == 0
    for node in cluster.node_names():
        ls = subprocess.run(
            ["docker", "exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q"], capture_output=True, text=True, timeout=60
        )
        assert f"docker.io/library/{tiny_image}" in ls.stdout.split(), f"{node}: {ls.stdout}"


def test_load_image_of_an_absent_image_is_one_line_and_exit_2(
    kind_cluster: cluster.ClusterInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["load-image", f"rh-test-absent:{uuid.uuid4().hex[:8]}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in the local docker images" in err[0], err


def cpu_shares(node: str) -> int:
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{.HostConfig.CpuShares}}", node], capture_output=True, text=True, timeout=60, check=True
    )
    return int(out.stdout.strip() or 0)


def test_up_puts_crictl_and_the_cpu_weight_back_and_kind_skips_images_the_nodes_have(kind_cluster: cluster.ClusterInfo) -> None:
    control_plane, *workers = cluster.node_names()
    assert control_plane.endswith("-control-plane")
    assert cpu_shares(control_plane) == cluster.CONTROL_PLANE_CPU_SHARES
    assert all(cpu_shares(w) in (0, 1024) for w in workers)  # docker's default, unset or set
    subprocess.run(["docker", "update", "--cpu-shares", "1024", control_plane], check=True, capture_output=True, timeout=60)
    crictl = provision.build_dir() / "bin" / "crictl"
    # ci/rh test builds it in the background (ci/prebuild.sh): wait for that build at this test's priority
    subprocess.run(["bash", "-c", f". {LOCK_SH}; build_lock {crictl}.lock"], check=True, timeout=900)
    assert crictl.exists(), "crictl did not build"
    node = cluster.node_names()[-1]
    subprocess.run(["docker", "exec", node, "rm", "-f", cluster.CRICTL], check=True, timeout=60)
    cluster.up()
    assert cpu_shares(control_plane) == cluster.CONTROL_PLANE_CPU_SHARES
    assert subprocess.run(["docker", "exec", node, "test", "-x", cluster.CRICTL], check=False, timeout=60).returncode == 0
    load = [provision.tool("kind"), "load", "docker-image", cluster.PROBE_IMAGES[0], "--name", cluster.CLUSTER]
    out = subprocess.run(load, capture_output=True, text=True, timeout=300, check=True)
    assert "found to be already present on all nodes" in out.stdout + out.stderr, out.stdout + out.stderr
