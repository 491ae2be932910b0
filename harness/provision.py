"""The host side of the cluster: Docker, disk space, the kind/kubectl binaries, the node image (official or built
offline) and the probe app images.

Everything here shells out to the bundled scripts (harness.resources) through `run`; the scripts get every path
they need from the environment (RH_CACHE, RH_VERSIONS_FILE, RH_PROBE_APP_DIR), never from their own location.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import IO

from harness import resources
from harness.errors import ClusterError, EnvironmentProblem

log = logging.getLogger("harness.provision")

MIN_FREE_GB = 15
_GRACE_S = 5.0  # between SIGTERM and SIGKILL of a timed-out command


def run(cmd: list[str], what: str, timeout: float = 3600, env: dict[str, str] | None = None) -> str:
    """Run a command and return its stdout, relaying its stderr lines as progress.

    Raises ClusterError naming `what` on a non-zero exit or after `timeout` seconds (silent or not),
    EnvironmentProblem when the command is missing or exits 3 (the scripts' "a prerequisite is missing").
    The child stays in our process group, so a Ctrl-C in the terminal reaches it (and what it started) directly.
    """
    log.debug("$ %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    except FileNotFoundError as e:
        raise EnvironmentProblem(f"{what}: {cmd[0]} not found") from e
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    tail: deque[str] = deque(maxlen=15)
    readers = [
        threading.Thread(target=_collect, args=(proc.stdout, out), name=f"{what}: stdout", daemon=True),
        threading.Thread(target=_relay, args=(proc.stderr, tail), name=f"{what}: stderr", daemon=True),
    ]
    for t in readers:
        t.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise ClusterError(f"{what}: timed out after {timeout:.0f}s") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        for t in readers:
            t.join(_GRACE_S)  # a daemon the child left behind may hold the pipes open: do not wait for it
        if not any(t.is_alive() for t in readers):
            proc.stdout.close()
            proc.stderr.close()
    if code != 0:
        lines = list(tail)  # a copy: a reader left running (see above) may still append
        last = next((t for t in reversed(lines) if t.startswith("error:")), lines[-1] if lines else "")
        if code == 3:
            raise EnvironmentProblem(last.removeprefix("error: ") or f"{what} failed")
        raise ClusterError(f"{what} failed (exit {code}): {last}")
    return "".join(out)


def _collect(stream: IO[str], out: list[str]) -> None:
    out.append(stream.read())


def _relay(stream: IO[str], tail: deque[str]) -> None:
    for raw in stream:
        line = raw.rstrip()
        log.log(logging.INFO if line.startswith(("[", "error:")) else logging.DEBUG, "%s", line)
        tail.append(line)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the child and everything it started (so a script's EXIT trap can clean up), SIGKILL them after a
    grace period, reap the child. The tree is read before any signal: orphans are re-parented and lost from view."""
    tree = [proc.pid, *_descendants(proc.pid)]
    _signal(tree, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_GRACE_S)
    _signal(tree, signal.SIGKILL)
    proc.wait()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _script(name: str, what: str, timeout: float, **env: str) -> str:
    """Run one bundled script with the paths it needs in its environment; return its stdout."""
    base = {"RH_CACHE": str(resources.cache_dir()), "RH_VERSIONS_FILE": str(resources.versions_file())}
    return run(["bash", str(resources.script(name))], what, timeout=timeout, env={**base, **env})


def ensure_docker() -> None:
    if shutil.which("docker") is None and shutil.which("dockerd") is None and os.geteuid() != 0:
        raise EnvironmentProblem("docker is not installed (and installing it needs root)")
    _script("docker-up.sh", "starting docker", timeout=600)


def docker_answers() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0


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


def _image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


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


def ensure_node_image(offline: str) -> str:
    """Return a node image tag present in docker; build it offline when needed or asked for."""
    v = resources.versions()
    offline_tag = f"rollout-harness/kind-node:{v['K8S_VERSION']}-offline"
    cached = (build_dir() / "node-image.tar").exists()
    if offline == "no" or (offline == "auto" and not cached and not _image_present(offline_tag) and _registry_reachable()):
        if shutil.which("kind") is None:
            raise EnvironmentProblem(f"kind is not installed (go install sigs.k8s.io/kind@{v['KIND_VERSION']})")
        return f"kindest/node:{v['K8S_VERSION']}"
    if not _image_present(offline_tag):
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
    _script("build-probe-image.sh", "building the probe app images", timeout=1800, RH_PROBE_APP_DIR=str(resources.probe_app_dir()))


def build_coredns_image() -> str:
    """CoreDNS built from the Go module proxy (cached), tagged as kubeadm's coredns Deployment names it."""
    return _script("build-coredns.sh", "building CoreDNS", timeout=3600).strip()
