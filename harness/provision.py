"""The host side of the cluster: Docker, disk space, the kind/kubectl binaries, the node image (official or built
offline) and the probe app images.

Everything here shells out to the bundled scripts (harness.resources) through harness.sh; the scripts get every
path they need from the environment (RH_CACHE, RH_VERSIONS_FILE, RH_PROBE_APP_DIR), never from their own location.
A script that exits 3 says "a prerequisite is missing" on its last `error:` line: an EnvironmentProblem.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

from harness import resources, sh
from harness.errors import CommandFailed, EnvironmentProblem

log = logging.getLogger("harness.provision")

MIN_FREE_GB = 15


def _script(name: str, what: str, timeout: float, **env: str) -> str:
    """Run one bundled script with the paths it needs in its environment; return its stdout."""
    base = {"RH_CACHE": str(resources.cache_dir()), "RH_VERSIONS_FILE": str(resources.versions_file())}
    try:
        return sh.run(["bash", str(resources.script(name))], timeout=timeout, what=what, env={**base, **env})
    except CommandFailed as e:
        if e.code == 3:
            raise EnvironmentProblem(e.detail.removeprefix("error: ") or f"{what} failed") from None
        raise


def ensure_docker() -> None:
    if shutil.which("docker") is None and shutil.which("dockerd") is None and os.geteuid() != 0:
        raise EnvironmentProblem("docker is not installed (and installing it needs root)")
    _script("docker-up.sh", "starting docker", timeout=600)


def docker_answers() -> bool:
    return shutil.which("docker") is not None and sh.ok(["docker", "info"], timeout=30)


def docker_userland_proxy(proc: Path = Path("/proc"), default_config: Path = Path("/etc/docker/daemon.json")) -> str:
    """Whether the running dockerd relays published ports through its userland proxy ("on"), or DNATs them ("off"),
    read from its command line and config file, never changed: through the proxy a refused connection reaches the
    client as a reset, so the host client's failure kinds depend on it. "unknown" if no dockerd is seen here."""
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if not args or Path(args[0].decode(errors="replace")).name != "dockerd":
            continue
        flags = [a.decode(errors="replace") for a in args[1:]]
        for i, a in enumerate(flags):
            if a.startswith("--userland-proxy"):
                value = a.partition("=")[2] or (flags[i + 1] if i + 1 < len(flags) and not flags[i + 1].startswith("-") else "true")
                return "off" if value == "false" else "on"
        conf = next(
            (
                a.partition("=")[2] or (flags[i + 1] if i + 1 < len(flags) else "")
                for i, a in enumerate(flags)
                if a.startswith("--config-file")
            ),
            "",
        )
        try:
            doc = json.loads((Path(conf) if conf else default_config).read_text())
        except (OSError, ValueError):
            doc = {}
        return "off" if isinstance(doc, dict) and doc.get("userland-proxy") is False else "on"
    return "unknown"


def _registry_reachable() -> bool:
    try:
        with socket.create_connection(("registry-1.docker.io", 443), timeout=3):
            return True
    except OSError:
        return False


def _check_disk() -> None:
    cache = resources.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free / 1e9
    if free < MIN_FREE_GB:
        raise EnvironmentProblem(f"only {free:.1f} GB free under {cache}; the offline build needs {MIN_FREE_GB} GB")


def image_present(image: str) -> bool:
    return sh.ok(["docker", "image", "inspect", image], timeout=30)


def build_dir() -> Path:
    """Where build-binaries.sh and build-node-image.sh keep their output for the pinned versions."""
    v = resources.versions()
    return resources.cache_dir() / f"build-{v['KIND_VERSION']}-{v['K8S_VERSION']}"


def tool(name: str) -> str:
    """kind or kubectl: the offline-built binary if there is one, else the one on PATH."""
    built = build_dir() / "bin" / name
    if built.exists():
        return str(built)
    found = shutil.which(name)
    if found:
        return found
    raise EnvironmentProblem(f"{name} is not installed; run `rollout-harness up --offline yes` to build it")


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    """kubectl (the built one, else the one on PATH) against `kubeconfig`; its stdout."""
    return sh.run([tool("kubectl"), "--kubeconfig", str(kubeconfig), *args], timeout=timeout, what=f"kubectl {' '.join(args[:3])}")


def ensure_node_image(offline: str) -> str:
    """Return a node image tag present in docker; build it offline when needed or asked for."""
    v = resources.versions()
    offline_tag = f"rollout-harness/kind-node:{v['K8S_VERSION']}-offline"
    cached = (build_dir() / "node-image.tar").exists()
    if offline == "no" or (offline == "auto" and not cached and not image_present(offline_tag) and _registry_reachable()):
        if shutil.which("kind") is None:
            raise EnvironmentProblem(f"kind is not installed (go install sigs.k8s.io/kind@{v['KIND_VERSION']})")
        return f"kindest/node:{v['K8S_VERSION']}"
    if not image_present(offline_tag):
        if not cached:
            _check_disk()
            if shutil.which("go") is None:
                raise EnvironmentProblem(
                    "no container registry is reachable and the Go toolchain (needed to build the node image offline) is missing"
                )
            log.info("building the offline node image (cold: ~15 min on 2 cores; cached afterwards under %s)", resources.cache_dir())
            _script("build-binaries.sh", "building Kubernetes binaries", timeout=7200)
        _script("build-node-image.sh", "building the node image", timeout=3600, NODE_IMAGE=offline_tag)
    return offline_tag


def build_probe_images() -> None:
    _script(
        "build-probe-image.sh",
        "building the probe app images",
        timeout=1800,
        RH_PROBE_APP_DIR=str(resources.probe_app_dir()),
        RH_PYTHON=sys.executable,  # its pip downloads the image's wheels (h2, grpcio)
    )


def build_coredns_image() -> str:
    """CoreDNS built from the Go module proxy (cached), tagged as kubeadm's coredns Deployment names it."""
    return _script("build-coredns.sh", "building CoreDNS", timeout=3600).strip()
