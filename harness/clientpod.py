"""`--client pod`: the same generator code in a pod inside the cluster, against the Service's ClusterIP. The
records come back after the run.

Image `rollout-harness/client:<hash>`: the offline python base (Debian's python3: the generator imports nothing
beyond the standard library) and this harness package. Built here and loaded into kind;
nothing is pulled or downloaded.

Placement: on the harness's cluster, required on the control-plane node (labelled `rollout-harness/role=ingress`,
taint tolerated), where the workload's pods never run, so no trigger touches the client; elsewhere preferred on
such a node and away from the workload's pods. Its traffic crosses kube-proxy on its own node before it reaches
any pod, as a client pod's traffic does on any cluster.

Clocks: a container shares the host kernel's CLOCK_MONOTONIC, so on kind the records' times compare with the
watch events exactly. The child's announced clock is checked against the parent's; a client on another kernel
(offset over 1 s) is refused rather than silently misaligned.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness import provision, sh
from harness.errors import ClusterError, EnvironmentProblem
from harness.kube import LABEL, Kube
from harness.waiting import wait_for

log = logging.getLogger("harness.clientpod")
POD = "rh-client"
BASE = "rollout-harness/python-base:bookworm"
SITE = "/usr/local/lib/python3.11/dist-packages"
RECORDS = "/records/records.jsonl"  # on a memory-backed emptyDir: no write may wait behind etcd's fsyncs
READY_TIMEOUT = 120.0
CPU_REQUEST = "1"

DOCKERFILE = f"""FROM {BASE}
COPY harness {SITE}/harness
RUN python3 -c "import harness.loadworker"
ENTRYPOINT ["sleep", "infinity"]
"""


def image() -> str:
    """Build (once per harness source) and return the client image's tag."""
    src = Path(__file__).parent
    h = hashlib.sha256(DOCKERFILE.encode())
    for p in sorted(src.rglob("*.py")):  # every module the image copies, subpackages (model, cli) included
        h.update(str(p.relative_to(src)).encode() + p.read_bytes())
    tag = f"rollout-harness/client:{h.hexdigest()[:12]}"
    if provision.image_present(tag):
        return tag
    if not provision.image_present(BASE):
        raise EnvironmentProblem(f"the client image needs {BASE}; run `rollout-harness up` first (it builds it)")
    log.info("[client] building %s", tag)
    with tempfile.TemporaryDirectory(prefix="rh-client-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        shutil.copytree(src, ctx / "harness", ignore=shutil.ignore_patterns("__pycache__", "bundled", "scripts"))
        sh.run(["docker", "build", "-q", "-t", tag, str(ctx)], timeout=600, what="building the client image")
    return tag


def ensure_loaded(cluster_name: str) -> str:
    """The client image, built if needed and loaded into the kind cluster once per process."""
    tag = image()
    _load(tag, cluster_name)
    return tag


@functools.cache
def _load(tag: str, cluster_name: str) -> None:
    from harness.cluster import load_images

    load_images((tag,), cluster_name)


def manifest(tag: str, labels: dict[str, str], workload_selector: str, own: bool, pulled: bool = False) -> dict[str, Any]:
    """own (the harness's kind cluster): required on the control-plane node, which no workload pod can use. Elsewhere:
    preferred there (any node labelled rollout-harness/role=ingress, or a control-plane that tolerates it), and
    preferably away from the workload's pods."""
    ingress = {"matchExpressions": [{"key": "rollout-harness/role", "operator": "In", "values": ["ingress"]}]}
    node_affinity: dict[str, Any] = (
        {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [ingress]}}
        if own
        else {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": ingress}]}
    )
    match = dict(kv.split("=", 1) for kv in workload_selector.split(","))
    away = {"labelSelector": {"matchLabels": match}, "topologyKey": "kubernetes.io/hostname"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD, "labels": {LABEL: "true", "rollout-harness.io/role": "client", **labels}},
        "spec": {
            "containers": [
                {
                    "name": "client",
                    "image": tag,
                    "imagePullPolicy": "IfNotPresent" if pulled else "Never",
                    # SYS_NICE: the generator raises its own priority as it does on the host (real-time round robin
                    # is refused in a container's cgroup, niceness -10 works); a CPU request gives its cgroup the
                    # weight to keep its schedule next to the control plane
                    "securityContext": {"capabilities": {"add": ["SYS_NICE"]}},
                    "resources": {"requests": {"cpu": CPU_REQUEST}},
                    "volumeMounts": [{"name": "records", "mountPath": "/records"}],
                }
            ],
            "volumes": [{"name": "records", "emptyDir": {"medium": "Memory", "sizeLimit": "512Mi"}}],
            "terminationGracePeriodSeconds": 0,
            "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": node_affinity,
                "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": away}]},
            },
        },
    }


async def start(kube: Kube, ns: str, tag: str, labels: dict[str, str], workload_selector: str, own: bool, pulled: bool = False) -> str:
    """Create the client pod and wait until it runs; return its node. pulled: the image comes from a registry."""
    await asyncio.to_thread(kube.create, ns, manifest(tag, labels, workload_selector, own, pulled))

    async def running() -> tuple[str | None, str]:
        pods = [p for p in await asyncio.to_thread(kube.list_pods, ns, "rollout-harness.io/role=client") if p.name == POD]
        if pods and pods[0].phase == "Running":
            return pods[0].node, "running"
        return None, (f"{pods[0].phase} {pods[0].reason}".strip() if pods else "not created")

    return await wait_for(running, timeout=READY_TIMEOUT, every=0.5, what=f"client pod {ns}/{POD} running", error=ClusterError)


def exec_prefix(kubeconfig: Path | None, context: str | None, ns: str) -> list[str]:
    """Command prefix that runs the rest of a command line in the client pod with stdin attached."""
    cmd = [provision.tool("kubectl")]
    cmd += ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    cmd += ["--context", context] if context else []
    return [*cmd, "exec", "-i", "-n", ns, POD, "--"]


FETCH_TIMEOUT = 300
"""s: copying a run's records out of the pod (tens of MB at most); kubectl exec itself may hang."""


async def fetch(prefix: tuple[str, ...], remote: str, local: Path, timeout: float = FETCH_TIMEOUT) -> None:
    """Copy a file out of the client pod."""
    with local.open("wb") as f:
        proc = await asyncio.create_subprocess_exec(*prefix, "cat", remote, stdout=f, stderr=asyncio.subprocess.PIPE)
        try:
            async with asyncio.timeout(timeout):
                _, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise ClusterError(f"copying {remote} out of the client pod took over {timeout:.0f}s") from None
    if proc.returncode != 0:
        raise ClusterError(f"could not copy {remote} out of the client pod: {err.decode().strip() or proc.returncode}")


async def wait_serving(
    prefix: tuple[str, ...], url: str, timeout: float, pods: frozenset[str] = frozenset(), gate: str = "harness.serving"
) -> None:
    """From inside the client pod, the same gate the host applies (harness.serving, run from the pod's copy of this
    package; or another gate module with its command line: harness.registryclient)."""
    proc = await asyncio.create_subprocess_exec(
        *prefix, "python3", "-m", gate, url, str(timeout), ",".join(sorted(pods)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout + 30):  # kubectl exec itself may hang
            out, _ = await proc.communicate()
    except TimeoutError:
        proc.kill()
        raise ClusterError(f"the serving gate in the client pod did not return within {timeout + 30:.0f}s") from None
    if proc.returncode != 0:
        lines = out.decode().strip().splitlines()
        raise ClusterError(f"from the client pod: {lines[-1] if lines else f'exit {proc.returncode}'}")
