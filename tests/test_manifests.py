"""Variants are data: every bundled variant loads, differs from its base, and bad input is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.manifests import available, load_variant, merge
from harness.resources import manifests_dir

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
