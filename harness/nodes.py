"""The kind cluster's node containers, through docker: which there are, and freezing or thawing one (node-down).

A frozen node is a paused container: every process in it stops, its network stack keeps running. A run killed
while its node was frozen leaves it so; the next `up`, and the next run's or test session's connect to the harness's
own cluster, thaw it (thaw_nodes).
"""

from __future__ import annotations

import logging

from harness import hostlock, sh
from harness.errors import ClusterError

log = logging.getLogger("harness.nodes")

KIND_LABEL = "io.x-k8s.kind.cluster"  # on every node container kind creates: the cluster's name
DOCKER_TIMEOUT = 60


def containers(cluster: str, *filters: str, stopped: bool = False, check: bool = True) -> list[str]:
    """The names of the cluster's node containers, sorted: the running ones (stopped too with stopped=True) that
    pass every `docker ps --filter` in filters. check=False: none when docker does not answer."""
    args = ["docker", "ps", *(["-a"] if stopped else []), "--format", "{{.Names}}"]
    for f in (f"label={KIND_LABEL}={cluster}", *filters):
        args += ["--filter", f]
    return sorted(sh.run(args, timeout=DOCKER_TIMEOUT, check=check).split())


def freeze_node(node: str, frozen: bool) -> None:
    """Freeze (docker pause) or thaw one node. Only node containers of a kind cluster are accepted; thawing a node
    that is not frozen does nothing."""
    fmt = f'{{{{index .Config.Labels "{KIND_LABEL}"}}}} {{{{.State.Paused}}}}'
    cluster_paused = sh.run(["docker", "inspect", "-f", fmt, node], timeout=DOCKER_TIMEOUT, check=False).split()
    if len(cluster_paused) != 2:
        raise ClusterError(f"{node!r} is not a kind node container")
    if frozen or cluster_paused[1] == "true":
        sh.run(["docker", "pause" if frozen else "unpause", node], timeout=DOCKER_TIMEOUT)


def thaw_nodes(cluster: str) -> None:
    """Thaw nodes a killed node-down run left frozen; a live run holds the host's `drain` lock while its node is
    frozen (the kernel drops the lock with the process), so its node is left alone."""
    frozen = containers(cluster, "status=paused")
    if not frozen or not hostlock.free("drain"):
        return
    for node in frozen:
        log.info("[cluster] node %s was left frozen (a node-down run was killed); thawing it", node)
        freeze_node(node, False)
