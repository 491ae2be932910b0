"""The harness's kind cluster: Docker, the node image (official or built offline), create, load, delete.

Everything here shells out to docker/kind and the scripts in ci/; nothing imports the Kubernetes client.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ClusterError, EnvironmentProblem

log = logging.getLogger("harness.cluster")

CLUSTER = "rollout-harness"
ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / "ci"
CACHE = Path(os.environ.get("RH_CACHE", Path.home() / ".cache" / "rollout-harness"))
NODEPORTS = range(30080, 30090)  # mapped to 127.0.0.1 on the host
PROBE_IMAGES = ("rollout-harness/probe-app:v1", "rollout-harness/probe-app:v2")
MIN_FREE_GB = 15


def _versions() -> dict[str, str]:
    out = {}
    for line in (CI / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kubeconfig: Path
    node_image: str
    nodeport_host: str = "127.0.0.1"


def kubeconfig_path(name: str = CLUSTER) -> Path:
    return CACHE / f"kubeconfig-{name}"


def _run(cmd: list[str], what: str, timeout: float = 3600, env: dict[str, str] | None = None) -> str:
    """Run a command, streaming its stderr lines as progress; raise ClusterError naming `what` on failure."""
    log.debug("$ %s", " ".join(cmd))
    try:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}, start_new_session=False
        )
    except FileNotFoundError as e:
        raise EnvironmentProblem(f"{what}: {cmd[0]} not found") from e
    tail: list[str] = []
    with proc:
        assert proc.stderr is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in proc.stderr:
            line = line.rstrip()
            if line.startswith("[") or line.startswith("error:"):
                log.info("%s", line)
            else:
                log.debug("%s", line)
            tail = [*tail, line][-15:]
            if time.monotonic() > deadline:
                proc.kill()
                raise ClusterError(f"{what}: timed out after {timeout:.0f}s")
        out = proc.stdout.read()
        code = proc.wait()
    if code != 0:
        last = next((t for t in reversed(tail) if t.startswith("error:")), tail[-1] if tail else "")
        if code == 3:
            raise EnvironmentProblem(last.removeprefix("error: ") or f"{what} failed")
        raise ClusterError(f"{what} failed (exit {code}): {last}")
    return out


def ensure_docker() -> None:
    if shutil.which("docker") is None and shutil.which("dockerd") is None and os.geteuid() != 0:
        raise EnvironmentProblem("docker is not installed (and installing it needs root)")
    _run(["bash", str(CI / "docker-up.sh")], "starting docker", timeout=600)


def _registry_reachable() -> bool:
    try:
        with socket.create_connection(("registry-1.docker.io", 443), timeout=3):
            return True
    except OSError:
        return False


def _check_disk() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(CACHE).free / 1e9
    if free < MIN_FREE_GB:
        raise EnvironmentProblem(f"only {free:.1f} GB free under {CACHE}; the offline build needs {MIN_FREE_GB} GB")


def _image_present(image: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0


def _tool(name: str) -> str:
    v = _versions()
    built = CACHE / f"build-{v['KIND_VERSION']}-{v['K8S_VERSION']}" / "bin" / name
    if built.exists():
        return str(built)
    found = shutil.which(name)
    if found:
        return found
    raise EnvironmentProblem(f"{name} is not installed; run `rollout-harness up --offline yes` to build it")


def kind_binary() -> str:
    return _tool("kind")


def ensure_node_image(offline: str) -> str:
    """Return a node image tag present in docker; build it offline when needed or asked for."""
    v = _versions()
    offline_tag = f"rollout-harness/kind-node:{v['K8S_VERSION']}-offline"
    cached = (CACHE / f"build-{v['KIND_VERSION']}-{v['K8S_VERSION']}" / "node-image.tar").exists()
    if offline == "no" or (offline == "auto" and not cached and not _image_present(offline_tag) and _registry_reachable()):
        official = f"kindest/node:{v['K8S_VERSION']}"
        if shutil.which("kind") is None:
            raise EnvironmentProblem("kind is not installed (go install sigs.k8s.io/kind@" + v["KIND_VERSION"] + ")")
        return official
    if not _image_present(offline_tag):
        if not cached:
            _check_disk()
            if shutil.which("go") is None:
                raise EnvironmentProblem(
                    "no container registry is reachable and the Go toolchain (needed to build the node image offline) is missing"
                )
            log.info("building the offline node image (cold: ~15 min on 2 cores; cached afterwards under %s)", CACHE)
            _run(["bash", str(CI / "build-binaries.sh")], "building Kubernetes binaries", timeout=7200)
        _run(["bash", str(CI / "build-node-image.sh")], "building the node image", timeout=3600)
    return offline_tag


def kind_config() -> str:
    ports = "\n".join(f"  - {{containerPort: {p}, hostPort: {p}, listenAddress: 127.0.0.1, protocol: TCP}}" for p in NODEPORTS)
    return f"""kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: iptables
  disableDefaultCNI: true
nodes:
- role: control-plane
  labels: {{rollout-harness/role: ingress}}
  extraPortMappings:
{ports}
- role: worker
- role: worker
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  failCgroupV1: false
"""


def cluster_exists(name: str = CLUSTER) -> bool:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=io.x-k8s.kind.cluster={name}", "-q"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def _nodes_running(name: str) -> bool:
    out = subprocess.run(["docker", "ps", "--filter", f"label=io.x-k8s.kind.cluster={name}", "-q"], capture_output=True, text=True)
    return len(out.stdout.split()) == 3


def build_probe_images() -> None:
    _run(["bash", str(CI / "build-probe-image.sh")], "building the probe app images", timeout=1800)


def load_images(images: tuple[str, ...], name: str = CLUSTER) -> None:
    for image in images:
        log.info("[up] loading %s into %s", image, name)
        _run([kind_binary(), "load", "docker-image", image, "--name", name], f"loading image {image}", timeout=600)


def _kubectl(kubeconfig: Path, *args: str) -> str:
    r = subprocess.run([_tool("kubectl"), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise ClusterError(f"kubectl {' '.join(args[:3])} failed: {last}")
    return r.stdout


def _cni_conflist(pod_cidr: str) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "rollout-harness-ptp",
            "plugins": [
                {
                    "type": "ptp",
                    "ipMasq": False,
                    "mtu": 1500,
                    "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]},
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
    )


_NODES_JSONPATH = (
    "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=='InternalIP')].address}{'\\n'}{end}"
)


def setup_cni(name: str, kubeconfig: Path, timeout: float = 120) -> None:
    """Static pod networking instead of kindnetd (not buildable offline): a ptp conflist per node from its
    podCIDR, plus a route on every node to every other node's podCIDR via that node's IP. Idempotent."""
    deadline = time.monotonic() + timeout
    while True:
        out = _kubectl(kubeconfig, "get", "nodes", "-o", _NODES_JSONPATH)
        nodes = [ln.split() for ln in out.splitlines() if ln.strip()]
        if len(nodes) == 3 and all(len(n) == 3 for n in nodes):
            break
        if time.monotonic() > deadline:
            raise ClusterError(f"nodes have no podCIDR/InternalIP after {timeout:.0f}s: {out.strip()!r}")
        time.sleep(1)
    for node, cidr, _ip in nodes:
        script = f"mkdir -p /etc/cni/net.d && printf '%s' '{_cni_conflist(cidr)}' > /etc/cni/net.d/10-rollout-harness.conflist"
        for other, ocidr, oip in nodes:
            if other != node:
                script += f" && ip route replace {ocidr} via {oip}"
        r = subprocess.run(["docker", "exec", node, "sh", "-c", script], capture_output=True, text=True)
        if r.returncode != 0:
            raise ClusterError(f"could not configure pod networking on {node}: {r.stderr.strip()}")
    log.info("[up] pod networking: static ptp CNI on %d nodes", len(nodes))


def _wait_ready(name: str, kubeconfig: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        r = subprocess.run(
            [_tool("kubectl"), "--kubeconfig", str(kubeconfig), "get", "nodes", "--no-headers"], capture_output=True, text=True
        )
        lines = r.stdout.split("\n") if r.returncode == 0 else []
        ready = [ln for ln in lines if " Ready " in ln]
        if len(ready) == 3:
            return
        last = r.stdout.strip() or r.stderr.strip()
        time.sleep(2)
    pods = subprocess.run(
        [_tool("kubectl"), "--kubeconfig", str(kubeconfig), "-n", "kube-system", "get", "pods", "--no-headers"],
        capture_output=True,
        text=True,
    ).stdout
    failing = [ln.split()[0] for ln in pods.splitlines() if "Running" not in ln]
    raise ClusterError(
        f"nodes not Ready after {timeout:.0f}s ({last.splitlines()[-1] if last else 'no answer'}); "
        f"failing kube-system pods: {', '.join(failing) or 'none'}; see "
        f"`docker exec {name}-worker journalctl -u kubelet -u containerd`"
    )


def up(offline: str = "auto", name: str = CLUSTER, wait: float = 300) -> ClusterInfo:
    """Idempotent: reuse a running cluster, else create it; always (re)load the probe images."""
    t0 = time.monotonic()
    ensure_docker()
    kubeconfig = kubeconfig_path(name)
    node_image = ensure_node_image(offline)
    build_probe_images()
    if cluster_exists(name) and not _nodes_running(name):
        log.info("[up] cluster %s exists but is not running; recreating", name)
        down(name)
    if not cluster_exists(name):
        cfg = CACHE / f"kind-{name}.yaml"
        cfg.write_text(kind_config())
        log.info("[up] creating kind cluster %s (1 control-plane + 2 workers) from %s", name, node_image)
        try:
            _run(
                [
                    kind_binary(),
                    "create",
                    "cluster",
                    "--name",
                    name,
                    "--image",
                    node_image,
                    "--config",
                    str(cfg),
                    "--kubeconfig",
                    str(kubeconfig),
                    "--wait",
                    "0s",
                ],
                "creating the kind cluster",
                timeout=wait + 300,
            )
        except BaseException:
            log.info("[up] creation failed or interrupted; deleting the partial cluster")
            down(name)
            raise
    else:
        log.info("[up] reusing running cluster %s", name)
        _run([kind_binary(), "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)], "exporting kubeconfig")
    setup_cni(name, kubeconfig)
    _wait_ready(name, kubeconfig, wait)
    # CoreDNS is not in the offline node image and nothing here needs DNS: keep it from crash-looping
    _kubectl(kubeconfig, "-n", "kube-system", "scale", "deployment", "coredns", "--replicas=0")
    load_images(PROBE_IMAGES, name)
    log.info("[up] cluster %s ready in %.0fs; kubeconfig %s", name, time.monotonic() - t0, kubeconfig)
    return ClusterInfo(name, kubeconfig, node_image)


def down(name: str = CLUSTER) -> None:
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        log.info("[down] docker is not running; nothing to delete")
        return
    if not cluster_exists(name):
        log.info("[down] no cluster %s", name)
        return
    log.info("[down] deleting cluster %s", name)
    cmd = [kind_binary(), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig_path(name))]
    _run(cmd, "deleting the cluster", timeout=300)
