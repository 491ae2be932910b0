"""Where the files the harness reads at run time are, in a clone and in an installed wheel alike.

They ship as package data and are found only through `importlib.resources`, never relative to this file:

    harness.bundled   base.yaml + variants/*.yaml   (the repository's manifests/, mapped in pyproject.toml)
    harness.scripts   the cluster build scripts + versions.env   (the repository's ci/, minus the dev-only rh, lint.sh and
                      build-registry.sh)
    probe_app         the probe app and the Dockerfile of its image

The cache directory is defined here and nowhere else; the scripts receive it as RH_CACHE.
Everything is resolved when called, not at import, so a missing file is one EnvironmentProblem at the point of use.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from harness.errors import EnvironmentProblem

MANIFESTS_PACKAGE = "harness.bundled"
SCRIPTS_PACKAGE = "harness.scripts"
PROBE_APP_PACKAGE = "probe_app"
VERSION_KEYS = ("KIND_VERSION", "K8S_VERSION", "CRICTL_VERSION", "DEBIAN_SUITE", "STOCK_NODE_IMAGE", "PYTHON_BASE")

_REINSTALL = "reinstall rollout-harness"


def _package_dir(package: str) -> Path:
    """The directory of a data package. The scripts and docker need real paths, so a zipped install is refused."""
    try:
        found = resources.files(package)
    except ModuleNotFoundError as e:
        raise EnvironmentProblem(f"package data {package!r} is not installed; {_REINSTALL}") from e
    if not isinstance(found, Path) or not found.is_dir():
        raise EnvironmentProblem(f"package data {package!r} is not a directory on disk ({found}); {_REINSTALL}")
    return found


def _file(package: str, name: str) -> Path:
    path = _package_dir(package) / name
    if not path.is_file():
        raise EnvironmentProblem(f"{path} is missing; {_REINSTALL}")
    return path


def manifests_dir() -> Path:
    """The bundled manifests: base.yaml and variants/*.yaml (what `--manifests DIR` replaces)."""
    return _package_dir(MANIFESTS_PACKAGE)


def script(name: str) -> Path:
    """One of the bundled cluster scripts, e.g. script("docker-up.sh")."""
    return _file(SCRIPTS_PACKAGE, name)


def versions_file() -> Path:
    """versions.env: the pinned kind, Kubernetes, crictl and Debian versions, and the images the stock path pulls by digest
    (passed to the scripts as RH_VERSIONS_FILE)."""
    return _file(SCRIPTS_PACKAGE, "versions.env")


def versions() -> dict[str, str]:
    """versions.env as a dict; every key in VERSION_KEYS is present."""
    path = versions_file()
    try:
        text = path.read_text()
    except OSError as e:
        raise EnvironmentProblem(f"cannot read {path}: {e.strerror}") from e
    out: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    missing = [k for k in VERSION_KEYS if not out.get(k)]
    if missing:
        raise EnvironmentProblem(f"{path} does not set {', '.join(missing)}")
    return out


def probe_app_dir() -> Path:
    """The probe app's image build context: the probe_app package and its Dockerfile (passed to the scripts as
    RH_PROBE_APP_DIR)."""
    for name in ("Dockerfile", "app.py", "h2app.py", "grpcapp.py", "registry.py"):
        _file(PROBE_APP_PACKAGE, name)
    return _package_dir(PROBE_APP_PACKAGE)


def cache_dir() -> Path:
    """Built binaries, node image tars, kubeconfigs and logs: $RH_CACHE, else ~/.cache/rollout-harness. Absolute (the
    scripts change directory), read at each call, not created here."""
    return Path(os.environ.get("RH_CACHE") or Path.home() / ".cache" / "rollout-harness").expanduser().absolute()
