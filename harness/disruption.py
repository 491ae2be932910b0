"""What drain and node-down do to nodes, and how it is undone, even after the run that did it was killed.

The node they take (`pick_node`) is a schedulable worker: never a control-plane node, never one someone already
cordoned; among those, the one with most of the cell's pods, and only while another schedulable worker is left for
their replacements. A cordon is recorded on the node in the same patch (annotation CORDONED_BY: the owner,
harness.owner), made only if nobody cordoned the node since it was read; uncordoning clears the cordon and the
annotation only where that owner's annotation is still there, so a cordon the harness did not make is never lifted.
A frozen node (node-down) carries FROZEN_BY while it is frozen.

`repair` runs at every connect (run, compare, the pytest plugin): it undoes the cordons of harness processes that are
gone, and the freeze marks on the harness's own cluster, whose frozen node containers harness.nodes.thaw_nodes has
thawed just before.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from harness import owner
from harness.errors import ApiError, RolloutError
from harness.kube import Kube, NodeChange
from harness.kubeviews import CORDONED_BY, FROZEN_BY, NodeView, Obj, PodView

log = logging.getLogger("harness.disruption")


def pick_node(nodes: Sequence[NodeView], pods: Sequence[PodView], what: str) -> tuple[str, set[str]]:
    """The node `what` (drain, node-down) takes, and the names of the pods on it: the schedulable worker with most
    of `pods` (ties: the first by name), if another schedulable worker is left. Else RolloutError saying why."""
    workers = sorted(n.name for n in nodes if not n.control_plane and not n.unschedulable)
    left_out = [f"{n.name} ({'control plane' if n.control_plane else 'cordoned'})" for n in nodes if n.name not in workers]
    why = f" (left out: {', '.join(left_out)})" if left_out else ""
    per_node = Counter(p.node for p in pods if p.node in workers)
    if not per_node:
        raise RolloutError(f"{what}: none of the pods runs on a schedulable worker{why}")
    node = min(per_node, key=lambda name: (-per_node[name], name))
    if len(workers) < 2:
        raise RolloutError(f"{what}: {node} is the only schedulable worker, its pods would have nowhere to go{why}")
    return node, {p.name for p in pods if p.node == node}


def _cordon(by: str) -> NodeChange:
    def change(n: NodeView) -> Obj | None:
        return None if n.unschedulable else {"spec": {"unschedulable": True}, "metadata": {"annotations": {CORDONED_BY: by}}}

    return change


def _uncordon(by: str) -> NodeChange:
    def change(n: NodeView) -> Obj | None:
        return {"spec": {"unschedulable": None}, "metadata": {"annotations": {CORDONED_BY: None}}} if n.cordoned_by == by else None

    return change


def _unfreeze(by: str) -> NodeChange:
    def change(n: NodeView) -> Obj | None:
        return {"metadata": {"annotations": {FROZEN_BY: None}}} if n.frozen_by == by else None

    return change


def cordon(kube: Kube, node: str) -> bool:
    """Cordon `node` as this process (recorded on it); False, and nothing changed, if it is cordoned already."""
    return kube.update_node(node, "cordon", _cordon(owner.me()))


def uncordon(kube: Kube, node: str, by: str | None = None) -> bool:
    """Lift the cordon `by` (default: this process) made, with its record; False, and nothing changed, if the node
    does not carry that record (someone else's cordon, or none)."""
    return kube.update_node(node, "uncordon", _uncordon(by or owner.me()))


def mark_frozen(kube: Kube, node: str) -> None:
    """Record on `node` that this process froze it (before it does)."""
    kube.update_node(node, "mark frozen", lambda n: {"metadata": {"annotations": {FROZEN_BY: owner.me()}}})


def unmark_frozen(kube: Kube, node: str, by: str | None = None) -> bool:
    """Remove the record that `by` (default: this process) froze `node` (once it is thawed)."""
    return kube.update_node(node, "unmark frozen", _unfreeze(by or owner.me()))


def repair(kube: Kube, own: bool) -> None:
    """Undo what harness processes that are gone left on the nodes, one log line each: their cordons, and on the
    harness's own cluster (own) their freeze marks. A cluster whose nodes we may not list carries none of our marks."""
    try:
        nodes = kube.nodes()
    except ApiError as e:
        if e.status == 403:
            return
        raise
    for n in nodes:
        if n.cordoned_by and owner.gone(n.cordoned_by) and uncordon(kube, n.name, n.cordoned_by):
            log.info("[run] uncordoned node %s, left cordoned by a harness process that is gone (%s)", n.name, n.cordoned_by)
        if not (n.frozen_by and owner.gone(n.frozen_by)):
            continue
        if not own:
            log.warning("node %s was frozen by a harness process that is gone (%s), on its host's docker", n.name, n.frozen_by)
        elif unmark_frozen(kube, n.name, n.frozen_by):
            log.info("[run] node %s: cleared the freeze mark of a harness process that is gone (%s)", n.name, n.frozen_by)
