"""The host side of the cluster: Docker, disk space, the kind/kubectl binaries, the node image and the probe app images.

Two paths, chosen once per `up` (choose -> NodeImage, the one place that says how they differ): where a container
registry answers, kind's own node image and the probe app's python base, pulled by digest (harness.pinned), with
kind's CNI and CoreDNS; where none does, everything built here from the Go module proxy and Debian's packages.

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from harness import pinned, resources, sh
from harness.errors import CommandFailed, EnvironmentProblem, UsageError

log = logging.getLogger("harness.provision")

MIN_FREE_GB = 15
REGISTRY = ("registry-1.docker.io", 443)  # asked by `up --offline auto`: does a container registry answer?
OFFLINE_PYTHON_BASE = "rollout-harness/python-base:bookworm"  # build-probe-image.sh's default


BUILD_NICE = 10
"""The builds (build-*.sh) run at this nice value: whatever else runs meanwhile (the unit tests that `ci/rh test` runs
while the cluster is built, a desktop) keeps its share of the CPU; alone, a build loses nothing."""


BUILD_GOGC = "400"
"""The Go compiler's GOGC in the builds, unless GOGC is set: the seven Kubernetes binaries compiled in 315 and 331 s
against 358 and 333 s with Go's default (a fresh build cache, 2 cores, runs alternated), for a largest compile or link
process of 1.9 GB instead of 1.1 GB."""


def _script(name: str, what: str, timeout: float, **env: str) -> str:
    """Run one bundled script with the paths it needs in its environment (a build at BUILD_NICE); return its stdout."""
    base = {"RH_CACHE": str(resources.cache_dir()), "RH_VERSIONS_FILE": str(resources.versions_file())}
    base["GOGC"] = os.environ.get("GOGC", BUILD_GOGC)
    nice = ["nice", "-n", str(BUILD_NICE)] if name.startswith("build-") else []
    try:
        return sh.run([*nice, "bash", str(resources.script(name))], timeout=timeout, what=what, env={**base, **env})
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
        with socket.create_connection(REGISTRY, timeout=3):
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
    v = resources.versions()
    raise EnvironmentProblem(
        f"{name} is not installed: install kind {v['KIND_VERSION']} and kubectl on PATH, or `rollout-harness up --offline yes` builds them"
    )


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    """kubectl (the built one, else the one on PATH) against `kubeconfig`; its stdout."""
    return sh.run([tool("kubectl"), "--kubeconfig", str(kubeconfig), *args], timeout=timeout, what=f"kubectl {' '.join(args[:3])}")


class Source(StrEnum):
    """Where the node image comes from."""

    STOCK = "stock"
    """kind's own kindest/node, pinned by digest (versions.env STOCK_NODE_IMAGE) and pulled: nothing is built."""
    OFFLINE = "offline"
    """Built here from the Go module proxy and Debian's packages (build-binaries.sh, build-node-image.sh): nothing
    is pulled."""


@dataclass(frozen=True)
class NodeImage:
    """How `up` gets its node image, and what follows from that for the cluster: the one place that says what the
    stock and the offline paths do differently. Chosen once per `up` (choose), named in one log line."""

    source: Source
    image: str
    """The image `kind create cluster --image` gets: the pinned reference (stock) or the local tag (offline)."""
    why: str
    """Why this path, for the log line."""
    kind_cni: bool
    """kindnetd, the node image's own CNI (stock). Without it (offline: kindnetd is not built) the kind config disables
    kind's default CNI and harness.network sets up static ptp networking. Either way the nodes get the dead-pod-IP
    routes and ICMP settings (harness.netguard)."""
    own_dns: bool
    """The node image carries its CoreDNS image (stock); else CoreDNS is built here and loaded (build-coredns.sh).
    Either way harness.network configures it (Corefile, one replica on the control plane)."""
    probe_base: str
    """The probe app image's base: the pinned python image (stock, pulled) or the offline Debian python base."""

    @classmethod
    def of(cls, source: Source, versions: dict[str, str], why: str) -> NodeImage:
        if source is Source.STOCK:
            return cls(source, versions["STOCK_NODE_IMAGE"], why, kind_cni=True, own_dns=True, probe_base=versions["PYTHON_BASE"])
        tag = f"rollout-harness/kind-node:{versions['K8S_VERSION']}-offline"
        return cls(source, tag, why, kind_cni=False, own_dns=False, probe_base=OFFLINE_PYTHON_BASE)

    def describe(self) -> str:
        """The one log line: which path and why."""
        how = "kind's CNI and CoreDNS" if self.source is Source.STOCK else "static ptp CNI, CoreDNS built here"
        return f"node image: {self.source.value} {self.image} ({how}): {self.why}"


def choose(offline: str, versions: dict[str, str], offline_built: bool, registry_answers: Callable[[], bool]) -> NodeImage:
    """The node image for `up --offline yes|no|auto`. auto: the offline image when it is already built here (the
    path the running cluster most likely took), else the stock image when a registry answers (asked only then),
    else the offline build."""
    if offline in ("yes", "no"):
        return NodeImage.of(Source.OFFLINE if offline == "yes" else Source.STOCK, versions, f"asked for (--offline {offline})")
    if offline != "auto":
        raise UsageError(f"--offline {offline!r}: give yes, no or auto")
    if offline_built:
        return NodeImage.of(Source.OFFLINE, versions, "the offline node image is already built here (--offline no pulls kindest/node)")
    host = f"{REGISTRY[0]}:{REGISTRY[1]}"
    if registry_answers():
        return NodeImage.of(Source.STOCK, versions, f"a container registry answers ({host})")
    return NodeImage.of(Source.OFFLINE, versions, f"no container registry answers ({host})")


def node_image(offline: str) -> NodeImage:
    """The node image `up` uses here (choose, with this machine's facts)."""
    v = resources.versions()
    built = (build_dir() / "node-image.tar").exists() or image_present(NodeImage.of(Source.OFFLINE, v, "").image)
    return choose(offline, v, built, _registry_reachable)


def provide(node: NodeImage, registry: str = "") -> NodeImage:
    """Get the node image and the probe app's base here: pulled by digest (from `registry`, host[:port], instead of the
    pins' own if given) or built offline. Returns `node` naming them as docker now knows them."""
    if node.source is Source.STOCK:
        want = resources.versions()["KIND_VERSION"]
        have = sh.run([tool("kind"), "version"], timeout=30, what="kind version").split()
        if want not in have:
            log.warning("[up] %s is on PATH; %s is pinned for kind %s, the release that published it", " ".join(have[:2]), node.image, want)
        return replace(node, image=pinned.pull(node.image, registry), probe_base=pinned.pull(node.probe_base, registry))
    if not image_present(node.image):
        if not (build_dir() / "node-image.tar").exists():
            _check_disk()
            if shutil.which("go") is None:
                raise EnvironmentProblem(f"offline build ({node.why}), and the Go toolchain it needs is missing")
            log.info("building the offline node image (cold: ~15 min on 2 cores; cached afterwards under %s)", resources.cache_dir())
            _binaries_beside_bases(node)
        _script("build-node-image.sh", "building the node image", timeout=3600, NODE_IMAGE=node.image)
    return node


def _binaries_beside_bases(node: NodeImage) -> None:
    """Compile the Kubernetes binaries while the Debian bases the images need (the node's, kube-proxy's, the probe
    app's: debootstrap, mostly downloads and unpacking) are made beside them, and the binaries of the add-ons `up`
    installs (CoreDNS, metrics-server: Go, like the Kubernetes ones, they fill the cores those leave idle while
    linking) and crictl (unless a background build makes it); one that fails stops the others."""
    bases = "building the node's Debian bases"
    works: list[sh.Beside[object]] = [
        sh.Beside(lambda: _script("build-binaries.sh", "building Kubernetes binaries", timeout=7200), "binaries"),
        sh.Beside(lambda: _script("build-node-image.sh", bases, 3600, NODE_IMAGE=node.image, RH_STAGE="bases"), "bases"),
        sh.Beside(lambda: _script("build-coredns.sh", "building CoreDNS", 3600, RH_BINARY_ONLY="1"), "coredns"),
        sh.Beside(lambda: _script("build-metrics-server.sh", "building metrics-server", 3600, RH_BINARY_ONLY="1"), "metrics-server"),
        sh.Beside(lambda: _script("build-crictl.sh", "building crictl", 3600), "crictl"),  # not when ci/prebuild.sh does
    ]
    if node.probe_base == OFFLINE_PYTHON_BASE:
        works.append(sh.Beside(lambda: _probe_script(node.probe_base, RH_STAGE="base"), "python base"))
    sh.together(*works)


def build_probe_images(node: NodeImage | None = None) -> None:
    """The probe app images v1 and v2 on `node`'s base (None: the one `up --offline auto` would choose)."""
    _probe_script((node or node_image("auto")).probe_base)


def _probe_script(base: str, **env: str) -> str:
    return _script(
        "build-probe-image.sh",
        "building the probe app images",
        timeout=1800,
        RH_PROBE_APP_DIR=str(resources.probe_app_dir()),
        PROBE_BASE=base,
        RH_PYTHON=sys.executable,  # its pip downloads the image's wheels (h2, grpcio)
        **env,
    )


def build_metrics_server_image() -> str:
    """metrics-server built from the Go module proxy (cached): what an HPA reads pods' CPU from (hpa-scale-in)."""
    return _script("build-metrics-server.sh", "building metrics-server", timeout=3600).strip()


def build_traefik_image() -> str:
    """The Traefik ingress controller built from the Go module proxy (cached): what `--via ingress` goes through."""
    return _script("build-traefik.sh", "building Traefik", timeout=3600).strip()


def build_coredns_image() -> str:
    """CoreDNS built from the Go module proxy (cached), tagged as kubeadm's coredns Deployment names it."""
    return _script("build-coredns.sh", "building CoreDNS", timeout=3600).strip()
