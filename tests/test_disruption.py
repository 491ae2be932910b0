"""Given clusters are not the harness's: which node a drain takes (disruption.pick_node), cordons recorded on the node
and lifted only by whoever made them, repair of what dead runs left, the marker that makes a cluster the harness's own
(harness.marker), and the refusals.

The Kubernetes API is faked at the client's boundary (CoreV1Api, objects in memory, resourceVersion preconditions as
the API server applies them); everything above it is the harness's own code."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from support import dead_owner

from harness import disruption, marker, owner
from harness.cli import build_parser, runflags
from harness.deploy import PortPool
from harness.errors import ClusterError, RolloutError, UsageError
from harness.kube import Kube
from harness.kubeviews import CORDONED_BY, FROZEN_BY, NodeView, PodView, node_view
from harness.model import RunOptions, Trigger
from harness.target import Target

CP = "node-role.kubernetes.io/control-plane"


# --- which node ------------------------------------------------------------------------------------------------------


def _node(name: str, cp: bool = False, cordoned: bool = False) -> NodeView:
    return NodeView(name, cp, cordoned)


def _pods(**per_node: int) -> list[PodView]:
    return [PodView(f"web-{node}-{i}", node, False, True, "Running") for node, n in per_node.items() for i in range(n)]


def test_a_drain_takes_the_busiest_schedulable_worker() -> None:
    nodes = [_node("cp", cp=True), _node("w1"), _node("w2", cordoned=True), _node("w3")]
    node, victims = disruption.pick_node(nodes, _pods(cp=5, w1=1, w2=4, w3=2), "drain")
    assert node == "w3" and victims == {"web-w3-0", "web-w3-1"}  # not the control plane, not the admin's cordoned w2
    assert disruption.pick_node([_node("w1"), _node("w3")], _pods(w1=2, w3=2), "drain")[0] == "w1"  # a tie: by name


def test_a_drain_with_no_worker_to_take_or_none_to_go_to_is_one_line() -> None:
    with pytest.raises(RolloutError, match=r"^drain: none of the pods runs on a schedulable worker \(left out: cp \(control plane\)\)$"):
        disruption.pick_node([_node("cp", cp=True), _node("w1")], _pods(cp=3), "drain")
    with pytest.raises(RolloutError, match=r"^node-down: w1 is the only schedulable worker, its pods would have nowhere to go \("):
        disruption.pick_node([_node("w1"), _node("w2", cordoned=True)], _pods(w1=2, w2=2), "node-down")


def test_a_control_plane_node_is_known_by_its_label_or_its_taint() -> None:
    def node(labels: dict[str, str], taints: list[str], unschedulable: bool | None = None) -> Any:
        meta = NS(name="n", labels=labels, annotations={CORDONED_BY: "x"}, resource_version="7")
        return NS(metadata=meta, spec=NS(taints=[NS(key=k) for k in taints], unschedulable=unschedulable))

    assert node_view(node({CP: ""}, [])).control_plane
    assert node_view(node({}, [CP])).control_plane
    assert node_view(node({}, ["node-role.kubernetes.io/master"])).control_plane
    plain = node_view(node({"kubernetes.io/hostname": "n"}, ["gpu"], True))
    assert plain == NodeView("n", False, True, cordoned_by="x", version="7")


# --- the API at the client's boundary --------------------------------------------------------------------------------


class FakeCore:
    """The CoreV1Api calls the node and marker code makes, on objects in memory. A patch carrying a resourceVersion
    applies only to that version (409 otherwise), as the API server does; `meddle` changes a node just after it is
    read, once (someone else acting between our read and our patch)."""

    def __init__(self, **nodes: dict[str, Any]) -> None:
        blank: dict[str, Any] = {"labels": {}, "taints": [], "unschedulable": False, "annotations": {}, "rv": 1}
        self.nodes = {name: blank | n for name, n in nodes.items()}
        self.config_maps: dict[tuple[str, str], Any] = {}
        self.meddle: dict[str, dict[str, Any]] = {}
        self.forbidden = False

    def __getattr__(self, call: str) -> Any:  # any other call: the code under test must not make it
        def unexpected(*args: Any, **kw: Any) -> Any:
            raise AssertionError(f"unexpected API call {call}")

        return unexpected

    def _obj(self, name: str) -> Any:
        n = self.nodes[name]
        meta = NS(name=name, labels=dict(n["labels"]), annotations=dict(n["annotations"]), resource_version=str(n["rv"]))
        return NS(metadata=meta, spec=NS(taints=[NS(key=k) for k in n["taints"]], unschedulable=n["unschedulable"] or None))

    def list_node(self, **kw: Any) -> Any:
        if self.forbidden:
            raise ApiException(status=403, reason="Forbidden")
        return NS(items=[self._obj(name) for name in self.nodes])

    def read_node(self, name: str, **kw: Any) -> Any:
        obj = self._obj(name)
        if name in self.meddle:
            self.nodes[name] |= self.meddle.pop(name)
            self.nodes[name]["rv"] += 1
        return obj

    def patch_node(self, name: str, body: dict[str, Any], **kw: Any) -> Any:
        n = self.nodes[name]
        if body.get("metadata", {}).get("resourceVersion") not in (None, str(n["rv"])):
            raise ApiException(status=409, reason="Conflict")
        if "unschedulable" in body.get("spec", {}):
            n["unschedulable"] = bool(body["spec"]["unschedulable"])
        for k, v in body.get("metadata", {}).get("annotations", {}).items():
            n["annotations"] = {a: b for a, b in n["annotations"].items() if a != k} | ({k: v} if v is not None else {})
        n["rv"] += 1
        return self._obj(name)

    def read_namespaced_config_map(self, name: str, ns: str, **kw: Any) -> Any:
        if (ns, name) not in self.config_maps:
            raise ApiException(status=404, reason="Not Found")
        return self.config_maps[ns, name]

    def create_namespaced_config_map(self, ns: str, body: dict[str, Any], **kw: Any) -> Any:
        name = body["metadata"]["name"]
        if (ns, name) in self.config_maps:
            raise ApiException(status=409, reason="Conflict")
        self.config_maps[ns, name] = NS(metadata=NS(uid=str(uuid.uuid4())), data=dict(body.get("data", {})))
        return self.config_maps[ns, name]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """kube(core, server="https://127.0.0.1:6443"): a harness Kube whose CoreV1Api is `core`."""
    monkeypatch.setenv("RH_CACHE", str(tmp_path / "cache"))

    def kube(core: FakeCore, server: str = "https://127.0.0.1:6443") -> Kube:
        cfg = tmp_path / f"kubeconfig-{uuid.uuid4().hex}"
        cfg.write_text(
            f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
        )
        monkeypatch.setattr(client, "CoreV1Api", lambda api_client: core)
        return Kube(cfg)

    return kube


def test_a_cordon_is_recorded_with_it_and_lifted_only_by_its_maker(api: Any) -> None:
    core = FakeCore(w1={}, w2={"unschedulable": True})
    kube = api(core)
    assert disruption.cordon(kube, "w1")
    assert core.nodes["w1"]["unschedulable"] and core.nodes["w1"]["annotations"] == {CORDONED_BY: owner.me()}
    assert not disruption.uncordon(kube, "w1", by="another run") and core.nodes["w1"]["unschedulable"]
    assert disruption.uncordon(kube, "w1")
    assert not core.nodes["w1"]["unschedulable"] and core.nodes["w1"]["annotations"] == {}
    # an admin's cordon: neither taken over nor lifted
    assert not disruption.cordon(kube, "w2") and not disruption.uncordon(kube, "w2")
    assert core.nodes["w2"]["unschedulable"] and core.nodes["w2"]["annotations"] == {}


def test_a_cordon_made_by_someone_else_between_our_read_and_our_patch_stays_theirs(api: Any) -> None:
    core = FakeCore(w1={})
    core.meddle["w1"] = {"unschedulable": True}  # kubectl cordon, just after we read w1 as schedulable
    assert not disruption.cordon(api(core), "w1")
    assert core.nodes["w1"]["unschedulable"] and core.nodes["w1"]["annotations"] == {}
    core.meddle["w1"] = {"labels": {"team": "a"}}  # an unrelated change: read again, then cordoned
    core.nodes["w1"]["unschedulable"] = False
    assert disruption.cordon(api(core), "w1") and core.nodes["w1"]["annotations"] == {CORDONED_BY: owner.me()}


@pytest.mark.integration  # a real process that has ended
def test_repair_lifts_what_dead_runs_left_and_nothing_else(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    dead = dead_owner()
    core = FakeCore(
        w1={"unschedulable": True, "annotations": {CORDONED_BY: dead}},
        w2={"unschedulable": True, "annotations": {CORDONED_BY: owner.me()}},  # a live run's drain
        w3={"unschedulable": True},  # an admin's
        w4={"annotations": {FROZEN_BY: dead}},
    )
    kube = api(core)
    with caplog.at_level(logging.INFO, logger="harness"):
        disruption.repair(kube, own=False)
    assert not core.nodes["w1"]["unschedulable"] and core.nodes["w1"]["annotations"] == {}
    assert [n for n in ("w2", "w3") if core.nodes[n]["unschedulable"]] == ["w2", "w3"]
    assert core.nodes["w4"]["annotations"] == {FROZEN_BY: dead}, "a given cluster's node is not thawed from here"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "uncordoned node w1" in lines[0] and "node w4 was frozen" in lines[1], lines
    disruption.repair(kube, own=True)
    assert core.nodes["w4"]["annotations"] == {}
    core.forbidden = True
    disruption.repair(kube, own=True)  # nodes we may not list carry none of our marks


# --- whose cluster ---------------------------------------------------------------------------------------------------


def test_a_cluster_is_own_only_with_the_marker_up_recorded(api: Any) -> None:
    core = FakeCore()
    kube = api(core)
    assert "marked no cluster" in marker.why_not_own(kube, "rh")
    marker.mark(kube, "rh")
    assert marker.why_not_own(kube, "rh") == ""
    cm = core.config_maps["kube-system", "rollout-harness-owner"]
    marker.mark(kube, "rh")  # idempotent: the marker stays as it is
    assert core.config_maps["kube-system", "rollout-harness-owner"] is cm and marker.why_not_own(kube, "rh") == ""
    renamed = api(core, server="https://localhost:6443")  # the same cluster, or anything else, at another address
    assert "reached at https://localhost:6443, not at https://127.0.0.1:6443" in marker.why_not_own(renamed, "rh")
    del core.config_maps["kube-system", "rollout-harness-owner"]
    assert "carries no marker" in marker.why_not_own(kube, "rh")
    core.create_namespaced_config_map("kube-system", {"metadata": {"name": "rollout-harness-owner"}, "data": {"id": cm.data["id"]}})
    assert "not the one `up` recorded" in marker.why_not_own(kube, "rh"), "a copied id is not enough: the uid differs"
    marker.forget("rh")
    assert not marker.record_path("rh").exists()


def _target(own: bool) -> Target:
    return Target(None, PortPool(range(30080, 30081)), {}, {}, own=own)  # type: ignore[arg-type]


def test_a_given_cluster_is_not_disrupted_unless_allowed_and_never_frozen() -> None:
    pod = {"client": "pod", "client_image": "registry.example/rh-client:1"}
    with pytest.raises(UsageError, match=r"^drain cordons a node .* did not create; allow disruption .*\(--allow-disruption\)$"):
        _target(own=False).check(RunOptions.of(**pod), [Trigger.SET_IMAGE, Trigger.DRAIN])
    _target(own=False).check(RunOptions.of(**pod, allow_disruption=True), [Trigger.DRAIN])
    with pytest.raises(UsageError, match="node-down freezes a node's container: it needs the harness's own kind cluster"):
        _target(own=False).check(RunOptions.of(**pod, allow_disruption=True), [Trigger.NODE_DOWN])
    _target(own=True).check(RunOptions(), [Trigger.DRAIN, Trigger.NODE_DOWN])


def test_allow_disruption_is_a_flag_of_run_and_compare() -> None:
    for verb in ("run", "compare"):
        assert not runflags.options(build_parser().parse_args([verb]), 1).consent.allow_disruption
        assert runflags.options(build_parser().parse_args([verb, "--allow-disruption"]), 1).consent.allow_disruption


@pytest.mark.integration  # a real socket that accepts and never answers
def test_an_api_call_that_names_no_timeout_gives_up_after_the_clients(tmp_path: Path, raw_server: Any) -> None:
    srv = raw_server(lambda conn: True)  # holds every connection open, says nothing
    cfg = tmp_path / "kubeconfig"
    cfg.write_text(
        f"apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{srv.port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    kube = Kube(cfg, timeout=0.5)
    try:
        with pytest.raises(ClusterError, match="unreachable"):
            kube.managed_namespaces()  # names no timeout of its own
    finally:
        kube.close()
