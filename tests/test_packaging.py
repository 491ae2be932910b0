"""The tool is installable: everything it reads at run time is package data, found through harness.resources.

Unit: the resources resolve in this install, and a missing one is one clear error; the dependencies declared are
what harness imports (and aiohttp, which it does not import, is only the `probe` extra's).
Integration: a wheel built from a copy of the repository carries the manifests, the four cluster scripts,
versions.env, the JSON Schemas and the probe app's Dockerfile (and not the dev-only ci/rh, ci/lint.sh); installed into a fresh venv
outside the clone, it lists the variants and finds its scripts without a clone in sight.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

from harness import resources, schemas
from harness.errors import EnvironmentProblem, UsageError
from harness.manifests import OVERLAYS, available

REPO = Path(__file__).resolve().parents[1]  # the source tree to build; tests are not shipped
SCRIPTS = ("docker-up.sh", "build-binaries.sh", "build-node-image.sh", "build-probe-image.sh")
ADDONS = ("build-traefik.sh", "build-metrics-server.sh", "build-go-module.sh", "scratch-image.sh")  # + their manifests under addons/


def test_resources_resolve() -> None:
    assert (resources.manifests_dir() / "base.yaml").is_file()
    assert all(resources.script(name).is_file() for name in SCRIPTS)
    assert set(resources.versions()) >= set(resources.VERSION_KEYS)
    assert {"Dockerfile", "__init__.py", "app.py", "h2app.py", "grpcapp.py"} <= {p.name for p in resources.probe_app_dir().iterdir()}


def test_missing_resources_are_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match=r"nope\.sh is missing; reinstall rollout-harness$"):
        resources.script("nope.sh")
    monkeypatch.setattr(resources, "SCRIPTS_PACKAGE", "probe_app")  # a data package without versions.env
    with pytest.raises(EnvironmentProblem, match=r"versions\.env is missing"):
        resources.versions()
    monkeypatch.setattr(resources, "SCRIPTS_PACKAGE", "harness.not_there")
    with pytest.raises(EnvironmentProblem, match=r"'harness\.not_there' is not installed"):
        resources.script("docker-up.sh")
    with pytest.raises(UsageError, match=f"no variants under {tmp_path}"):
        available(tmp_path)


def test_cache_dir_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RH_CACHE", str(tmp_path))
    assert resources.cache_dir() == tmp_path
    monkeypatch.setenv("RH_CACHE", "")
    assert resources.cache_dir() == Path.home() / ".cache" / "rollout-harness"


IMPORT_NAMES = {"pyyaml": "yaml", "grpcio": "grpc"}  # distributions whose module has another name
PLUGIN_HOST = {"pytest"}  # harness.pytest_plugin is loaded only by pytest, which is there when it is


def _dist(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return match[0].lower().replace("_", "-")


def _third_party_imports(package: Path) -> dict[str, set[str]]:
    """The top-level modules outside the standard library and this project that `package`'s modules import, and which
    modules do."""
    found: dict[str, set[str]] = {}
    for f in package.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for top in {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"harness", "probe_app"}:
                found.setdefault(top, set()).add(f.relative_to(REPO).as_posix())
    return found


def test_dependencies_are_what_harness_imports() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {IMPORT_NAMES.get(d, d) for d in map(_dist, project["dependencies"])}
    extras = {name: {IMPORT_NAMES.get(d, d) for d in map(_dist, reqs)} for name, reqs in project["optional-dependencies"].items()}
    imported = _third_party_imports(REPO / "harness")
    assert set(imported) - PLUGIN_HOST - runtime == extras["plot"], "harness imports what pyproject does not declare"
    assert runtime <= set(imported), f"declared but never imported by harness: {sorted(runtime - set(imported))}"
    probe = set(_third_party_imports(REPO / "probe_app"))  # its HTTP/2 and gRPC servers use the runtime's h2
    assert "aiohttp" not in runtime and extras["probe"] == {"aiohttp"} == probe - runtime


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 120) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


_PROBE = """
import harness, harness.resources as r
from harness.errors import EnvironmentProblem
from harness.manifests import available
print(harness.__file__)
print(harness.__version__)
print(r.manifests_dir())
print(",".join(available()))
print(r.script("docker-up.sh"))
print(r.versions()["K8S_VERSION"])
print(r.probe_app_dir() / "Dockerfile")
from harness.schemas import schema
print(schema("rollout-harness/run@2")["$id"])
for dev_only in ("rh", "lint.sh"):
    try:
        r.script(dev_only)
        print("shipped", dev_only)
    except EnvironmentProblem:
        pass
"""


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_wheel_is_self_contained(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info behind in the clone
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "results")
    shutil.copytree(REPO, src, ignore=junk)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", dist, src], tmp_path, 240)
    (wheel,) = dist.glob("rollout_harness-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"harness/scripts/{s}" for s in (*SCRIPTS, "versions.env")} | {
        "harness/bundled/base.yaml",
        "harness/bundled/variants/README.md",
        "harness/bundled/overlays/README.md",
        "probe_app/Dockerfile",
        "probe_app/app.py",
        "probe_app/h2app.py",
        "probe_app/grpcapp.py",
    }
    expected |= {f"harness/bundled/variants/{name}.yaml" for name in available()}
    expected |= {f"harness/bundled/overlays/{name}.yaml" for name in available(kind=OVERLAYS)}
    expected |= {f"harness/schemas/{name}" for name in schemas.FILES.values()}
    expected |= {f"harness/scripts/{s}" for s in ADDONS} | {
        f"harness/bundled/addons/{p.name}" for p in (REPO / "manifests" / "addons").glob("*.yaml")
    }
    assert expected <= names
    assert not {n for n in names if n.endswith(("/rh", "/lint.sh")) or n.startswith(("ci/", "manifests/", "tests/", "bench/"))}
    (meta,) = (n for n in names if n.endswith(".dist-info/METADATA"))
    requires = Parser().parsestr(zipfile.ZipFile(wheel).read(meta).decode()).get_all("Requires-Dist") or []
    unconditional = {_dist(r) for r in requires if ";" not in r}
    assert {"kubernetes", "shtab"} <= unconditional and "aiohttp" not in unconditional, requires
    assert [r.split(";")[1].strip() for r in requires if _dist(r) == "aiohttp"] == ['extra == "probe"'], requires

    venv = tmp_path / "venv"  # no pip inside: the running pip installs into it; no access to system site-packages
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel], tmp_path)
    # the dependencies (aiohttp, kubernetes, ...) come from this interpreter's site-packages, appended after the
    # venv's own: a plain path entry, so the editable install's finder (.pth files there) is not activated
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    (site / "deps-from-test-runner.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "elsewhere"
    work.mkdir()
    lines = _run([py, "-c", _PROBE], work).splitlines()
    harness_file, version, manifests, variants, docker_up, k8s, dockerfile, run_schema = lines[:8]
    assert Path(harness_file).is_relative_to(site)
    assert version == wheel.name.split("-")[1]
    assert Path(manifests) == site / "harness" / "bundled"
    assert variants.split(",") == available() and len(variants.split(",")) >= 16
    assert Path(docker_up) == site / "harness" / "scripts" / "docker-up.sh" and Path(docker_up).is_file()
    assert k8s == resources.versions()["K8S_VERSION"]
    assert Path(dockerfile) == site / "probe_app" / "Dockerfile" and Path(dockerfile).is_file()
    assert run_schema == "urn:rollout-harness:schema:run@2"
    assert lines[8:] == []  # neither rh nor lint.sh is reachable

    assert _run([venv / "bin" / "rollout-harness", "--version"], work).split() == ["rollout-harness", version]
    usage = _run([py, "-m", "harness", "--help"], work)
    assert "compare" in usage and "down" in usage
    bash = _run([venv / "bin" / "rollout-harness", "completion", "bash"], work)
    assert "compare" in bash and "census" in bash
    loaded = "import sys, harness.cli, harness.load, harness.serving; print(sorted({m.split('.')[0] for m in sys.modules}))"
    assert not {"aiohttp", "yarl"} & set(eval(_run([py, "-c", loaded], work)))  # the load path needs neither
