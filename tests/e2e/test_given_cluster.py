"""A cluster given by --kubeconfig/--context is used as it is (never created or deleted), and the CI gate's exit status
follows the known answers: --max-failures 0 exits 1 for naive (load from a client pod) and 0 for best-practice
(from the host: the pod's generator cannot promise a non-blind zero on this machine, see test_client_pod).
A context that is not a kind cluster is refused for both clients, in one line, before anything is deployed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from harness import cluster
from harness.cli import main
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def _renamed(tmp_path: Path, context: str) -> Path:
    """The harness's kubeconfig with its context renamed (the same cluster seen as someone else's)."""
    doc = yaml.safe_load(cluster.kubeconfig_path().read_text())
    old = doc["current-context"]
    for c in doc["contexts"]:
        if c["name"] == old:
            c["name"] = context
    doc["current-context"] = context
    path = tmp_path / f"kubeconfig-{context}"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("client", "expect"), [("host", "needs the harness's own kind cluster"), ("pod", "give its reference as the client image")]
)
def test_a_context_that_is_not_kind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], client: str, expect: str) -> None:
    kubeconfig = _renamed(tmp_path, "someone-elses")
    assert main(["run", "--kubeconfig", str(kubeconfig), "--client", client, "--out", str(tmp_path / "out")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("rollout-harness: error:")]
    assert len(err) == 1 and expect in err[0], err


@pytest.mark.parametrize(("variant", "client", "code"), [("naive", "pod", 1), ("best-practice", "host", 0)])
async def test_given_cluster_and_the_gate(tmp_path: Path, target: Target, variant: str, client: str, code: int) -> None:
    kubeconfig = _renamed(tmp_path, f"kind-{cluster.CLUSTER}")
    out = tmp_path / "out"
    argv = ["run", "--variant", variant, "--kubeconfig", str(kubeconfig), "--client", client, "--rate", "150", "--max-failures", "0"]
    assert await asyncio.to_thread(main, [*argv, "--out", str(out), "--junit", str(tmp_path / "junit.xml")]) == code
    (r,) = load_results(out)
    assert r.provenance.options["client"] == client
    assert (r.lost > 0) == (variant == "naive"), r.lost_by_kind
    assert ('failures="1"' in (tmp_path / "junit.xml").read_text()) == (variant == "naive")
