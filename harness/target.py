"""The cluster a matrix runs on: the harness's own kind cluster (brought up if needed) or one the user gave.

Connecting also removes leftovers of dead runs (only namespaces the harness created) and says, once, which of the
run's settings this cluster cannot serve (harness.model.RunOptions is checked against it before any cell runs).
"""

from __future__ import annotations

import asyncio
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__, cluster, fingerprint, provision
from harness.deploy import PortPool, remove_leftovers
from harness.errors import ClusterError, UsageError
from harness.kube import Kube, context_name
from harness.model import Client, RunOptions
from harness.resources import cache_dir

log = logging.getLogger("harness.target")


@dataclass(frozen=True)
class Target:
    """The cluster a matrix runs on."""

    kube: Kube
    ports: PortPool
    versions: dict[str, str]
    settings: dict[str, str]
    nodes: tuple[str, ...] = ()
    """Node containers whose conntrack tables are flushed for a cell's NodePort before it (kind only)."""
    kubeconfig: Path | None = None
    context: str | None = None
    kind_name: str | None = None
    """The kind cluster's name when the target is a kind cluster (images are loaded into it), else None."""
    own: bool = True
    """The harness's own kind cluster: the host client's NodePorts are mapped to 127.0.0.1, nodes are reachable."""
    images: dict[str, str] = field(default_factory=dict)
    """`image <tag>` -> docker image ID of the probe images loaded into a kind target (fingerprint.images)."""

    def check(self, opts: RunOptions) -> None:
        """UsageError if this cluster cannot serve opts (before any cell is set up)."""
        t = opts.traffic
        if t.client is Client.HOST and not self.own:
            raise UsageError(
                "a client on the host needs the harness's own kind cluster (its NodePorts are mapped to 127.0.0.1); run the client in a pod"
            )
        if t.client is Client.HOST and self.settings.get("userland_proxy") == "on":
            raise UsageError(
                "Docker's userland proxy is on here: a refused connection would reach a client on the host as a reset, "
                "so the failure kinds would be wrong; run the client in a pod, or use a dockerd with userland-proxy false"
            )
        if t.client is Client.POD and self.kind_name is None and not t.client_image:
            raise UsageError(
                "a client pod: this context is not a kind cluster (kind-NAME), so the client image cannot be loaded into "
                "it; push the one `rollout-harness client-image` builds and give its reference as the client image"
            )


async def connect(no_up: bool, kubeconfig: Path | None = None, context: str | None = None) -> Target:
    """The harness's kind cluster, brought up unless no_up; or, given a kubeconfig and/or a context, that cluster,
    never created or deleted. Removes leftovers of dead runs (only namespaces the harness created)."""
    if kubeconfig is not None or context is not None:
        return await _given(kubeconfig, context)
    kubeconfig = cluster.kubeconfig_path()
    if no_up:
        if not kubeconfig.exists():
            raise ClusterError(f"no kubeconfig at {kubeconfig}; run `rollout-harness up` first")
    else:
        await asyncio.to_thread(cluster.up)
    kube = Kube(kubeconfig)
    return await _own(kube, await _reach(kube), kubeconfig, None)


async def _own(kube: Kube, server: str, kubeconfig: Path | None, context: str | None) -> Target:
    """The harness's own kind cluster: NodePorts on 127.0.0.1, node containers and settings read from docker."""
    return Target(
        kube,
        PortPool(cluster.NODEPORTS, cache_dir() / "nodeports.json"),
        _versions(server),
        {"cluster": cluster.CLUSTER} | await asyncio.to_thread(cluster.settings),
        tuple(await asyncio.to_thread(cluster.node_names)),
        kubeconfig,
        context,
        cluster.CLUSTER,
        images=await asyncio.to_thread(fingerprint.images, cluster.PROBE_IMAGES),
    )


async def _given(kubeconfig: Path | None, context: str | None) -> Target:
    if kubeconfig is not None and not kubeconfig.is_file():
        raise UsageError(f"kubeconfig {kubeconfig}: no such file")
    name = await asyncio.to_thread(context_name, kubeconfig, context)
    kube = Kube(kubeconfig, context)
    server = await _reach(kube)
    kind = name.removeprefix("kind-") if name.startswith("kind-") else None
    if kind == cluster.CLUSTER:  # the harness's own cluster, named by its kubeconfig: all of it works, nothing is created
        return await _own(kube, server, kubeconfig, context)
    if kind is not None:
        await asyncio.to_thread(provision.build_probe_images)
        await asyncio.to_thread(cluster.load_images, cluster.PROBE_IMAGES, kind)
    settings = {"cluster": f"context {name}", "proxy_mode": await asyncio.to_thread(kube.proxy_mode)}
    images = await asyncio.to_thread(fingerprint.images, cluster.PROBE_IMAGES) if kind is not None else {}
    return Target(kube, PortPool(cluster.NODEPORTS), _versions(server), settings, (), kubeconfig, context, kind, own=False, images=images)


async def _reach(kube: Kube) -> str:
    server = await asyncio.to_thread(kube.ping)
    log.info("[run] cluster API %s", server)
    await remove_leftovers(kube)
    return server


def _versions(server: str) -> dict[str, str]:
    return {"harness": __version__, "python": platform.python_version(), "kubernetes": server}
