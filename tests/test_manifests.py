"""Variants are data: every bundled variant loads, differs from its base, and bad input is one clear error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.deploy import render
from harness.errors import UsageError
from harness.manifests import OVERLAYS, Variant, as_daemonset, as_statefulset, available, load_variant, load_workload, merge
from harness.model import CellSpec, ConnMode, RunOptions, Trigger
from harness.resources import manifests_dir
from harness.workload import Workload
from harness.yamlfile import read_yaml

REQUIRED = {
    "naive",
    "readiness",
    "readiness-prestop",
    "prestop-native-sleep",
    "graceful-app",
    "prestop-longer-than-grace",
    "surge1-unavail0",
    "min-ready",
    "recreate",
    "pdb",
    "anti-affinity-preferred",
    "anti-affinity-required",
    "startup-slow",
    "startup-slow-probe",
    "tcp-probe-hung",
    "best-practice",
}


def test_all_required_variants_exist() -> None:
    assert set(available()) >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED - {"naive"}))
def test_each_variant_differs_from_its_base(name: str) -> None:
    v = load_variant(name)
    base = load_variant(v.chain[1])
    assert v.description
    assert (v.deployment, v.objects, v.update_env) != (base.deployment, base.objects, base.update_env)


def test_merge_by_name_and_null_deletes() -> None:
    base = {"containers": [{"name": "app", "image": "a", "probe": {"httpGet": 1}}], "keep": 1}
    over = {"containers": [{"name": "app", "probe": {"httpGet": None, "tcpSocket": 2}}, {"name": "side"}]}
    assert merge(base, over) == {"containers": [{"name": "app", "image": "a", "probe": {"tcpSocket": 2}}, {"name": "side"}], "keep": 1}


def test_key_settings() -> None:
    c = load_variant("readiness-prestop").deployment["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz" and c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    bp = load_variant("best-practice")
    assert bp.deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert [o["kind"] for o in bp.objects] == ["PodDisruptionBudget"]
    assert "httpGet" not in load_variant("tcp-probe-hung").deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    env = {e["name"]: e.get("value") for e in load_variant("max-conn-age").deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MAX_CONN_AGE"] == "2" and env["SHUTDOWN"] == "graceful", "best-practice's env, and the age added to it"


def test_unknown_variant_lists_available() -> None:
    with pytest.raises(UsageError, match=r"unknown variant 'nope'; available: .*naive"):
        load_variant("nope")


def _tree(tmp_path: Path, variant_text: str) -> Path:
    (tmp_path / "variants").mkdir(parents=True)
    (tmp_path / "base.yaml").write_text((manifests_dir() / "base.yaml").read_text())
    (tmp_path / "variants" / "naive.yaml").write_text("name: naive\ndescription: x\nbase: null\n")
    (tmp_path / "variants" / "bad.yaml").write_text(variant_text)
    return tmp_path


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = _tree(tmp_path, "name: bad\ndescription: a: b: c\n")
    with pytest.raises(UsageError, match=r"bad\.yaml: malformed YAML at line 2"):
        load_variant("bad", root)


def test_unknown_key_and_loop(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown keys"):
        load_variant("bad", _tree(tmp_path / "a", "name: bad\nbase: naive\nreplicas: 3\n"))
    with pytest.raises(UsageError, match="loops"):
        load_variant("bad", _tree(tmp_path / "b", "name: bad\nbase: bad\n"))


SHOP = Path(__file__).parent / "examples" / "shop-api.yaml"
DEP = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {x: y}}\n"
    "  template:\n    metadata: {labels: {x: y}}\n    spec: {containers: [{name: c, image: i}]}\n"
)
SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {x: y}, ports: [{port: 80}]}\n"


def test_own_workload_keeps_its_names_and_is_rendered_for_either_client() -> None:
    v = load_workload(SHOP, port=8000)
    w = Workload.from_objects(v.deployment, v.service)
    assert (v.name, w.deployment, w.selector, w.container, w.service) == (
        "shop-api",
        "shop-api",
        "app.kubernetes.io/name=shop",
        "server",
        "shop",
    )
    assert "namespace" not in v.deployment["metadata"], "every cell gets a fresh namespace"
    host = render(v, 30081, {"rollout-harness.io/variant": v.name})
    svc = next(o for o in host if o["kind"] == "Service")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0] == {
        "name": "api",
        "port": 8000,
        "targetPort": "web",
        "nodePort": 30081,
    }
    pod = next(o for o in render(v, None, {}) if o["kind"] == "Service")
    assert "type" not in pod["spec"] and all("nodePort" not in p for p in pod["spec"]["ports"])
    assert [o["kind"] for o in host] == ["Deployment", "Service", "PodDisruptionBudget"]


@pytest.mark.parametrize(
    ("text", "port", "expect"),
    [
        (SVC, None, "needs exactly one Deployment (found 0)"),
        (DEP + "---\n" + DEP, None, "needs exactly one Deployment (found 2)"),
        (DEP, None, "needs a Service whose selector matches"),
        (DEP + "---\n" + SVC.replace("{x: y}", "{x: z}"), None, "needs a Service whose selector matches"),
        (DEP + "---\n" + SVC, 81, "--port 81: Service 's' has TCP ports [80]"),
        (DEP + "---\n" + SVC.replace("{port: 80}", "{port: 53, protocol: UDP}"), None, "Service 's' has no TCP port (53/UDP)"),
        (DEP.replace("  selector: {matchLabels: {x: y}}\n", "") + "---\n" + SVC, None, "Deployment 'a' needs spec.selector.matchLabels"),
        (DEP.replace("{matchLabels: {x: y}}", "{matchLabels: {x: z}}"), None, "spec.selector.matchLabels {'x': 'z'} does not select"),
        (DEP.replace("apps/v1", "extensions/v1beta1"), None, "Deployment 'a' is extensions/v1beta1, which Kubernetes no longer serves"),
        ("kind: Deployment\nmetadata: [a]\n", None, "a 'Deployment' object whose metadata or spec is not a mapping"),
        (DEP + "---\n" + SVC + "---\nkind: Secret\nmetadata: {name: k}\n", None, "cannot create 'Secret' objects"),
        (DEP.replace("spec: {containers: [{name: c, image: i}]}", "spec: {}"), None, "a container with an image"),
    ],
)
def test_bad_workload_files(tmp_path: Path, text: str, port: int | None, expect: str) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(text)
    with pytest.raises(UsageError, match=re.escape(expect)):
        load_workload(f, port)


def _server(v: Variant) -> dict[str, Any]:
    container: dict[str, Any] = v.deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_overlays_change_one_setting_of_your_workload() -> None:
    for name in available(kind=OVERLAYS):
        v = load_workload(SHOP, 8000, (name,))
        assert v.name == ("shop-api" if name == "as-is" else f"shop-api+{name}")
        assert render(v, 30081, {}), name
    assert "readinessProbe" not in _server(load_workload(SHOP, 8000, ("no-readiness",)))
    tcp = _server(load_workload(SHOP, 8000, ("readiness-tcp",)))["readinessProbe"]
    assert tcp["tcpSocket"] == {"port": "web"} and "httpGet" not in tcp, "the probe goes to the loaded port's targetPort"
    assert "preStop" not in _server(load_workload(SHOP, 8000, ("no-prestop",)))["lifecycle"]
    assert _server(load_workload(SHOP, 8000, ("prestop-sleep",)))["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    (pdb,) = load_workload(SHOP, 8000, ("pdb",)).objects
    assert pdb["metadata"]["name"] == "shop-api" and pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "shop"}},
    }, "replaces the workload's own PDB (two PDBs on one pod make evictions fail)"
    assert load_workload(SHOP, 8000, ("no-pdb",)).objects == ()
    anti = load_workload(SHOP, 8000, ("anti-affinity",)).deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert list(anti) == ["preferredDuringSchedulingIgnoredDuringExecution"]
    tolerations = load_workload(SHOP, 8000, ("fast-failover",)).deployment["spec"]["template"]["spec"]["tolerations"]
    assert {(t["key"], t["tolerationSeconds"]) for t in tolerations} == {
        ("node.kubernetes.io/unreachable", 10),
        ("node.kubernetes.io/not-ready", 10),
    }


def test_overlays_combine_in_order_and_deletions_of_missing_keys_add_nothing(tmp_path: Path) -> None:
    v = load_workload(SHOP, 8000, ("no-prestop", "no-readiness", "no-pdb"))
    assert v.name == "shop-api+no-prestop+no-readiness+no-pdb" and v.chain == ("no-prestop", "no-readiness", "no-pdb")
    assert "readinessProbe" not in _server(v) and "preStop" not in _server(v)["lifecycle"] and v.objects == ()
    f = tmp_path / "My_App.yaml"
    f.write_text(DEP + "---\n" + SVC)
    bare = load_workload(f, None, ("no-anti-affinity", "no-prestop"))
    assert bare.name == "my-app+no-anti-affinity+no-prestop"
    assert bare.deployment["spec"]["template"]["spec"] == {"containers": [{"name": "c", "image": "i", "lifecycle": {}}], "affinity": {}}
    added = load_workload(f, None, ("surge1-unavail0", "anti-affinity")).deployment["spec"]
    assert added["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    term = added["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": {"x": "y"}}
    with pytest.raises(UsageError, match=r"unknown overlay 'nope'; available: .*as-is"):
        load_workload(f, None, ("nope",))


def test_a_variant_as_a_statefulset_keeps_its_pods_and_gains_a_headless_service() -> None:
    dep = load_variant("best-practice")
    sts = as_statefulset(dep)
    spec = sts.deployment["spec"]
    assert sts.deployment["kind"] == "StatefulSet" and sts.name == dep.name
    assert spec["template"] == dep.deployment["spec"]["template"], "the same pods"
    assert "strategy" not in spec and "progressDeadlineSeconds" not in spec and spec["updateStrategy"] == {"type": "RollingUpdate"}
    headless = sts.objects[-1]
    assert headless["spec"]["clusterIP"] == "None" and spec["serviceName"] == headless["metadata"]["name"] == "web-pods"
    assert headless["spec"]["selector"] == {"app": "web"} and sts.objects[:-1] == dep.objects
    w = Workload.from_objects(sts.deployment, sts.service)
    assert (w.kind, w.deployment, w.service) == ("StatefulSet", "web", "web"), "the load still goes to the normal Service"
    rendered = render(sts, 30080, {})
    assert [o["kind"] for o in rendered] == ["StatefulSet", "Service", "PodDisruptionBudget", "Service"]
    with pytest.raises(UsageError, match="Recreate strategy has no StatefulSet counterpart"):
        as_statefulset(load_variant("recreate"))


def test_a_variant_as_a_daemonset_runs_on_every_node_and_keeps_its_rolling_update() -> None:
    dep = load_variant("best-practice")
    ds = as_daemonset(dep)
    spec, pod = ds.deployment["spec"], ds.deployment["spec"]["template"]["spec"]
    assert ds.deployment["kind"] == "DaemonSet" and "replicas" not in spec and "strategy" not in spec
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert "topologySpreadConstraints" not in pod and "podAntiAffinity" not in (pod.get("affinity") or {})
    assert pod["containers"] == dep.deployment["spec"]["template"]["spec"]["containers"], "the same containers"
    assert ds.service == dep.service and ds.objects == dep.objects
    assert Workload.from_objects(ds.deployment, ds.service).kind == "DaemonSet"
    assert as_daemonset(load_variant("naive")).deployment["spec"]["updateStrategy"] == {"type": "RollingUpdate"}, "the DaemonSet default"
    with pytest.raises(UsageError, match="Recreate strategy has no DaemonSet counterpart"):
        as_daemonset(load_variant("recreate"))


def test_a_variant_may_change_the_service() -> None:
    assert load_variant("etp-local").service["spec"]["externalTrafficPolicy"] == "Local"
    assert "externalTrafficPolicy" not in load_variant("best-practice").service["spec"]


def test_a_daemonset_refuses_the_triggers_it_has_no_answer_for() -> None:
    cells = [CellSpec("naive", t, ConnMode.NEW) for t in (Trigger.SET_IMAGE, Trigger.RESTART, Trigger.ROLLBACK)]
    RunOptions.of(kind="daemonset").validate(cells)
    for trigger, why in ((Trigger.SCALE, "no replicas"), (Trigger.DRAIN, "ignore-daemonsets"), (Trigger.NODE_DOWN, "not replaced")):
        with pytest.raises(UsageError, match=f"daemonset × {trigger.value}: .*{why}"):
            RunOptions.of(kind="daemonset").validate([CellSpec("naive", trigger, ConnMode.NEW)])


def test_a_kubectl_export_list_loads_as_new_objects(tmp_path: Path) -> None:
    """`kubectl get deployment,service -o yaml` writes a List of objects carrying what the server set; each cell
    creates them afresh, so that is dropped (a create with a resourceVersion or a taken cluster IP fails)."""
    server = {"resourceVersion": "42", "uid": "u", "creationTimestamp": "2024-01-01T00:00:00Z", "namespace": "prod"}
    dep = yaml.safe_load(DEP) | {"status": {"replicas": 1}}
    dep["metadata"] |= server | {"annotations": {"deployment.kubernetes.io/revision": "3", "team": "x"}}
    svc = yaml.safe_load(SVC)
    svc["metadata"] |= server
    svc["spec"] |= {"type": "NodePort", "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]}
    svc["spec"]["ports"] = [{"port": 53, "protocol": "UDP"}, {"port": 80, "nodePort": 30000}]
    f = tmp_path / "export.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [dep, svc], "metadata": {"resourceVersion": ""}}))
    v = load_workload(f)
    assert v.deployment["metadata"] == {"name": "a", "annotations": {"team": "x"}} and "status" not in v.deployment
    assert v.service["metadata"] == {"name": "s"} and "clusterIP" not in v.service["spec"] and "clusterIPs" not in v.service["spec"]
    assert v.service["spec"]["ports"] == [{"port": 80}, {"port": 53, "protocol": "UDP"}], "the load goes to the TCP port"
    f.write_text(yaml.safe_dump({"kind": "DeploymentList", "items": [{k: x for k, x in dep.items() if k != "kind"}]}) + "---\n" + SVC)
    assert load_workload(f).deployment["kind"] == "Deployment"


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (BOMB.encode(), "YAML refused: aliases expand to more than 10,000 nodes"),
        (b"a: &a [*a]\n", "YAML refused: an alias refers to a node that contains it"),
        (b"[" * 100_000, "YAML nested too deeply"),
        (b"#" * (2 << 20), "2,097,152 bytes; YAML files over 1 MiB are refused"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a YAML text file (byte 0x89 at offset 0 is not UTF-8)"),
        (b"a: 1\x00\n", "not a YAML text file (character #x0000 at position 4"),
        (b"a: !!python/object:os.system x\n", "malformed YAML at line 1: could not determine a constructor"),
    ],
)
@pytest.mark.timeout(60)  # an expansion that is not refused takes hours and gigabytes, not a minute
def test_yaml_that_is_not_a_small_text_is_refused_at_once(tmp_path: Path, content: bytes, expect: str) -> None:
    f = tmp_path / "w.yaml"
    f.write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(f"{f}: {expect}")) as e:
        read_yaml(f)
    assert "\n" not in str(e.value)


def test_yaml_aliases_within_the_limit_and_utf16_load(tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    f.write_text("env: &env [{name: A, value: '1'}]\nmain: *env\nside: *env\n")
    env = [{"name": "A", "value": "1"}]
    assert read_yaml(f) == [{"env": env, "main": env, "side": env}]
    f.write_bytes("kind: Service # é\n".encode("utf-16"))  # what PowerShell's `>` writes
    assert read_yaml(f) == [{"kind": "Service"}]
    with pytest.raises(UsageError, match=r"standard input \('-'\) is not supported: save it to a file"):
        read_yaml(Path("-"))


def test_an_autoscaler_among_the_objects_is_the_workloads() -> None:
    v = load_variant("hpa-prestop")
    w = Workload.from_objects(v.deployment, v.service, v.objects)
    assert w.autoscaler == "web" and Workload.from_objects(v.deployment, v.service).autoscaler == ""
    assert "readinessProbe" in v.deployment["spec"]["template"]["spec"]["containers"][0]
    with pytest.raises(UsageError, match="hpa-scale-in: the variants' autoscalers scale a Deployment"):
        RunOptions.of(kind="statefulset").validate([CellSpec("hpa-naive", Trigger.HPA_SCALE_IN, ConnMode.NEW)])


def test_a_cell_in_mode_h2_or_grpc_opens_that_port_and_the_service_leads_to_it() -> None:
    from harness.manifests import serving_mode

    v = load_variant("best-practice")
    assert serving_mode(v, "new") is v and serving_mode(v, "keepalive") is v
    for mode, port in (("h2", 8081), ("grpc", 8082)):
        m = serving_mode(v, mode)
        app = m.deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"name": f"{mode.upper()}_PORT", "value": str(port)} in app["env"] and {"containerPort": port, "name": mode} in app["ports"]
        assert m.service["spec"]["ports"][0]["targetPort"] == mode and v.service["spec"]["ports"][0]["targetPort"] == "http"
