"""A cluster given by --kubeconfig/--context is used as it is (never created or deleted), and the CI gate's exit status
follows the known answers: --max-failures 0 exits 1 for naive (load from a client pod) and 0 for best-practice
(from the host). A kubeconfig that reaches the harness's own cluster where `up` marked it is the own cluster, whatever
its context is called.

`--client pod`: the same generator in a pod on the control-plane node, through the Service's ClusterIP: the lossy
known answer holds from there (naive's run here), the records come back, and the client pod is not part of the
watched workload. Not asserted: best-practice's zero from the pod. On this 2-core machine the pod's generator cannot
take real-time priority (cgroup v2 refuses it inside a container), and its longest gap during a rollout reached
146-271 ms in 3 of 12 best-practice runs, so those zeros are correctly marked unreliable (README, "--client pod").

A cluster that is not the harness's own (here: the own cluster's kubeconfig with its server written as localhost
instead of 127.0.0.1, or with the marker gone), is refused in one line, before anything is deployed: a host client
and a client pod without an image when it is not a kind cluster, node-down always, drain unless disruption is allowed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from harness import cluster, marker
from harness.cli import main
from harness.model import Phase, Status
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _renamed(tmp_path: Path, context: str, elsewhere: bool = False) -> Path:
    """The harness's kubeconfig with its context renamed (the same cluster seen as someone else's); elsewhere: with its
    server at localhost instead of 127.0.0.1 (the same API server, certified for both names, at an address `up` did
    not mark: to the harness, another cluster)."""
    doc = yaml.safe_load(cluster.kubeconfig_path().read_text())
    old = doc["current-context"]
    for c in doc["contexts"]:
        if c["name"] == old:
            c["name"] = context
    doc["current-context"] = context
    if elsewhere:
        for c in doc["clusters"]:
            assert "//127.0.0.1:" in c["cluster"]["server"], c
            c["cluster"]["server"] = c["cluster"]["server"].replace("//127.0.0.1:", "//localhost:")
    path = tmp_path / f"kubeconfig-{context}"
    path.write_text(yaml.safe_dump(doc))
    return path


def _one_error(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    """The only error line on stderr, and all of stderr."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("rollout-harness: error:")]
    assert len(lines) == 1, err
    return lines[0], err


@pytest.mark.parametrize(
    ("client", "expect"), [("host", "needs the harness's own kind cluster"), ("pod", "give its reference as the client image")]
)
def test_a_context_that_is_not_kind_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind_cluster: cluster.ClusterInfo, client: str, expect: str
) -> None:
    kubeconfig = _renamed(tmp_path, "someone-elses", elsewhere=True)
    assert main(["run", "--kubeconfig", str(kubeconfig), "--client", client, "--out", str(tmp_path / "out")]) == 2
    line, _ = _one_error(capsys)
    assert expect in line


def test_drain_on_a_cluster_the_harness_did_not_create_needs_consent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind_cluster: cluster.ClusterInfo
) -> None:
    kubeconfig = _renamed(tmp_path, "someone-elses", elsewhere=True)
    argv = ["run", "--trigger", "drain", "--kubeconfig", str(kubeconfig), "--client", "pod", "--client-image", "registry.invalid/rh:0"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    line, err = _one_error(capsys)
    assert "drain cordons a node and evicts pods on a cluster the harness did not create" in line and "--allow-disruption" in line
    assert "not the harness's own cluster (it is reached at https://localhost:" in err


@pytest.mark.parametrize("how", ["elsewhere", "unmarked"])
async def test_a_context_named_as_the_harness_own_is_not_enough_for_node_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: Target, how: str
) -> None:
    """kind-rollout-harness, but reached where `up` did not mark it, or with its marker gone: not the own cluster."""
    kubeconfig = _renamed(tmp_path, f"kind-{cluster.CLUSTER}", elsewhere=how == "elsewhere")
    argv = ["run", "--trigger", "node-down", "--kubeconfig", str(kubeconfig), "--client", "pod", "--allow-disruption"]
    if how == "unmarked":
        await asyncio.to_thread(target.kube.core.delete_namespaced_config_map, marker.NAME, marker.NAMESPACE)
    try:
        assert await asyncio.to_thread(main, [*argv, "--out", str(tmp_path / "out")]) == 2
    finally:
        if how == "unmarked":  # as the next `up` does
            await asyncio.to_thread(marker.mark, target.kube, cluster.CLUSTER)
    line, err = _one_error(capsys)
    assert "node-down freezes a node's container: it needs the harness's own kind cluster" in line
    assert ("it is reached at https://localhost:" if how == "elsewhere" else "it carries no marker") in err
    assert await asyncio.to_thread(marker.why_not_own, target.kube, cluster.CLUSTER) == ""


@pytest.mark.parametrize(("variant", "client", "code"), [("naive", "pod", 1), ("best-practice", "host", 0)])
async def test_given_cluster_and_the_gate(tmp_path: Path, target: Target, variant: str, client: str, code: int) -> None:
    kubeconfig = _renamed(tmp_path, f"kind-{cluster.CLUSTER}")
    out = tmp_path / "out"
    argv = ["run", "--variant", variant, "--kubeconfig", str(kubeconfig), "--client", client, "--rate", "150", "--max-failures", "0"]
    assert await asyncio.to_thread(main, [*argv, "--out", str(out), "--junit", str(tmp_path / "junit.xml")]) == code
    (r,) = load_results(out)
    assert r.provenance.options["client"] == client
    assert (r.lost > 0) == (variant == "naive"), r.lost_by_kind
    why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} {r.error}"
    assert r.window_sent > 500 and r.status is Status.USED, why
    if variant == "naive":  # the lossy known answer, from a client pod
        assert r.phases[Phase.DISRUPTION].fail_pct >= 3.0, why
        assert not any(e.name == "rh-client" for e in r.events), "the client pod is not part of the workload"
    assert ('failures="1"' in (tmp_path / "junit.xml").read_text()) == (variant == "naive")
