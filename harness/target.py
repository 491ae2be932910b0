"""The cluster a matrix runs on: the harness's own kind cluster (brought up if needed) or one the user gave.

Whose a cluster is follows from the marker `up` writes into its own (harness.marker), not from a context's name: a
kubeconfig or context the user gives may well reach the harness's own cluster, and a context named like it may reach
another. Connecting also undoes what dead runs left (namespaces the harness created, cordons and freeze marks on
nodes, frozen node containers of its own cluster, records directories: harness.leftovers, harness.nodes), and `check`
says, once, which of the run's settings or triggers this cluster cannot serve or was not allowed to suffer, before
any cell runs.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import __version__, cluster, fingerprint, leftovers, marker, nodes, provision
from harness.deploy import PortPool
from harness.errors import ClusterError, UsageError
from harness.kube import Kube, context_name
from harness.model import Client, RunOptions, Trigger, Via
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
    """The harness's own kind cluster (it carries the marker `up` recorded): the host client's NodePorts are mapped to
    127.0.0.1, its nodes can be frozen, drain needs no consent."""
    images: dict[str, str] = field(default_factory=dict)
    """`image <tag>` -> docker image ID of the probe images loaded into a kind target (fingerprint.images)."""

    def check(self, opts: RunOptions, triggers: Iterable[Trigger] = ()) -> None:
        """UsageError if this cluster cannot serve opts and triggers, or was not allowed to suffer them (before any
        cell is set up)."""
        triggers = set(triggers)
        if Trigger.NODE_DOWN in triggers and not self.own:
            raise UsageError("node-down freezes a node's container: it needs the harness's own kind cluster, which `up` marks")
        if Trigger.DRAIN in triggers and not self.own and not opts.consent.allow_disruption:
            raise UsageError(
                "drain cordons a node and evicts pods on a cluster the harness did not create; allow disruption to run it "
                "there (--allow-disruption)"
            )
        t = opts.traffic
        if t.via is not Via.SERVICE and not self.own:
            raise UsageError(f"via {t.via.value}: the ingress controller is installed in the harness's own kind cluster, which `up` marks")
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
    never created or deleted. Undoes what dead runs left on it (see the module's docstring)."""
    if kubeconfig is None and context is None:
        kubeconfig = cluster.kubeconfig_path()
        if no_up and not kubeconfig.exists():
            raise ClusterError(f"no kubeconfig at {kubeconfig}; run `rollout-harness up` first")
        if not no_up:
            await asyncio.to_thread(cluster.up)
    elif kubeconfig is not None and not kubeconfig.is_file():
        raise UsageError(f"kubeconfig {kubeconfig}: no such file")
    kube = Kube(kubeconfig, context)
    server = await asyncio.to_thread(kube.ping)
    log.info("[run] cluster API %s", server)
    why_not = await asyncio.to_thread(marker.why_not_own, kube, cluster.CLUSTER)
    if why_not:
        log.info("[run] not the harness's own cluster (%s): only what the harness creates there is touched", why_not)
    else:
        await asyncio.to_thread(nodes.thaw_nodes, cluster.CLUSTER)  # a run killed during node-down leaves its node frozen
    await asyncio.to_thread(leftovers.repair, kube, not why_not)
    if not why_not:
        return await _own(kube, server, kubeconfig, context)
    return await _given(kube, server, kubeconfig, context)


async def _own(kube: Kube, server: str, kubeconfig: Path | None, context: str | None) -> Target:
    """The harness's own kind cluster: NodePorts on 127.0.0.1, node containers and settings read from docker."""
    return Target(
        kube,
        PortPool(cluster.WORKLOAD_NODEPORTS, cache_dir() / "nodeports.json"),
        _versions(server),
        {"cluster": cluster.CLUSTER} | await asyncio.to_thread(cluster.settings),
        tuple(await asyncio.to_thread(cluster.node_names)),
        kubeconfig,
        context,
        cluster.CLUSTER,
        images=await asyncio.to_thread(fingerprint.images, cluster.PROBE_IMAGES),
    )


async def _given(kube: Kube, server: str, kubeconfig: Path | None, context: str | None) -> Target:
    """A cluster the harness did not create; a kind cluster (context kind-NAME) gets the probe images loaded."""
    name = await asyncio.to_thread(context_name, kubeconfig, context)
    kind = name.removeprefix("kind-") if name.startswith("kind-") else None
    if kind is not None:
        await asyncio.to_thread(provision.build_probe_images)
        await asyncio.to_thread(cluster.load_images, cluster.PROBE_IMAGES, kind)
    settings = {"cluster": f"context {name}", "proxy_mode": await asyncio.to_thread(kube.proxy_mode)}
    images = await asyncio.to_thread(fingerprint.images, cluster.PROBE_IMAGES) if kind is not None else {}
    return Target(kube, PortPool(cluster.NODEPORTS), _versions(server), settings, (), kubeconfig, context, kind, own=False, images=images)


def _versions(server: str) -> dict[str, str]:
    return {"harness": __version__, "python": platform.python_version(), "kubernetes": server}
