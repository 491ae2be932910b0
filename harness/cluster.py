"""The harness's kind cluster: kind config, create or reuse, static pod networking, wait Ready, load images, delete.

Host prerequisites (Docker, the kind/kubectl binaries, the node and probe images) come from harness.provision;
everything here shells out to kind, kubectl and docker; nothing imports the Kubernetes client.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import provision
from harness.errors import ClusterError
from harness.resources import cache_dir
from harness.waiting import wait_for_sync

log = logging.getLogger("harness.cluster")

CLUSTER = "rollout-harness"
NODEPORTS = range(30080, 30090)  # mapped to 127.0.0.1 on the host
PROBE_IMAGES = ("rollout-harness/probe-app:v1", "rollout-harness/probe-app:v2")
NODES = 3  # kind_config(): one control plane, two workers


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    kubeconfig: Path
    node_image: str
    nodeport_host: str = "127.0.0.1"


def kubeconfig_path(name: str = CLUSTER) -> Path:
    return cache_dir() / f"kubeconfig-{name}"


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
    return len(out.stdout.split()) == NODES


def load_images(images: tuple[str, ...], name: str = CLUSTER) -> None:
    for image in images:
        log.info("[up] loading %s into %s", image, name)
        provision.run([provision.tool("kind"), "load", "docker-image", image, "--name", name], f"loading image {image}", timeout=600)


def _kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> str:
    what = f"kubectl {' '.join(args[:3])}"
    try:
        r = subprocess.run(
            [provision.tool("kubectl"), "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{what}: no answer within {timeout:.0f}s") from None
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"
        raise ClusterError(f"{what} failed: {last}")
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

    def addressed() -> tuple[list[list[str]] | None, str]:
        out = _kubectl(kubeconfig, "get", "nodes", "-o", _NODES_JSONPATH)
        nodes = [ln.split() for ln in out.splitlines() if ln.strip()]
        done = len(nodes) == NODES and all(len(n) == 3 for n in nodes)
        return (nodes if done else None), repr(out.strip())

    nodes = wait_for_sync(addressed, timeout=timeout, every=1, what=f"{NODES} nodes with a podCIDR and an InternalIP", error=ClusterError)
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
    def ready() -> tuple[bool | None, str]:
        try:
            out = _kubectl(kubeconfig, "get", "nodes", "--no-headers")
        except ClusterError as e:  # the API server may still be starting
            return None, str(e)
        status = [ln.split()[:2] for ln in out.splitlines() if ln.strip()]
        done = len(status) == NODES and all(s[1:] == ["Ready"] for s in status)
        return (True if done else None), ", ".join(" ".join(s) for s in status) or "no nodes"

    try:
        wait_for_sync(ready, timeout=timeout, every=2, what=f"{NODES} nodes Ready", error=ClusterError)
    except ClusterError as e:
        try:
            pods = _kubectl(kubeconfig, "-n", "kube-system", "get", "pods", "--no-headers")
            failing = ", ".join(ln.split()[0] for ln in pods.splitlines() if ln.strip() and "Running" not in ln) or "none"
        except ClusterError as pe:
            failing = f"unknown ({pe})"
        raise ClusterError(
            f"{e}; failing kube-system pods: {failing}; see `docker exec {name}-worker journalctl -u kubelet -u containerd`"
        ) from None


def up(offline: str = "auto", name: str = CLUSTER, wait: float = 300) -> ClusterInfo:
    """Idempotent: reuse a running cluster, else create it; always (re)load the probe images."""
    t0 = time.monotonic()
    provision.ensure_docker()
    kubeconfig = kubeconfig_path(name)
    node_image = provision.ensure_node_image(offline)
    provision.build_probe_images()
    if cluster_exists(name) and not _nodes_running(name):
        log.info("[up] cluster %s exists but is not running; recreating", name)
        down(name)
    kind = provision.tool("kind")
    if not cluster_exists(name):
        cfg = cache_dir() / f"kind-{name}.yaml"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(kind_config())
        log.info("[up] creating kind cluster %s (1 control-plane + 2 workers) from %s", name, node_image)
        create = [kind, "create", "cluster", "--name", name, "--image", node_image, "--config", str(cfg)]
        try:
            provision.run([*create, "--kubeconfig", str(kubeconfig), "--wait", "0s"], "creating the kind cluster", timeout=wait + 300)
        except BaseException:
            log.info("[up] creation failed or interrupted; deleting the partial cluster")
            down(name)
            raise
    else:
        log.info("[up] reusing running cluster %s", name)
        provision.run([kind, "export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig)], "exporting kubeconfig")
    setup_cni(name, kubeconfig)
    _wait_ready(name, kubeconfig, wait)
    # CoreDNS is not in the offline node image and nothing here needs DNS: keep it from crash-looping
    _kubectl(kubeconfig, "-n", "kube-system", "scale", "deployment", "coredns", "--replicas=0")
    load_images(PROBE_IMAGES, name)
    log.info("[up] cluster %s ready in %.0fs; kubeconfig %s", name, time.monotonic() - t0, kubeconfig)
    return ClusterInfo(name, kubeconfig, node_image)


def down(name: str = CLUSTER) -> None:
    if not provision.docker_answers():
        log.info("[down] docker is not running; nothing to delete")
        return
    if not cluster_exists(name):
        log.info("[down] no cluster %s", name)
        return
    log.info("[down] deleting cluster %s", name)
    cmd = [provision.tool("kind"), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig_path(name))]
    provision.run(cmd, "deleting the cluster", timeout=300)
