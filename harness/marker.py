"""Which cluster is the harness's own: the one `up` marked, whatever its contexts are called.

A context's name proves nothing (any context can be renamed kind-rollout-harness). `up` writes a ConfigMap
(kube-system/rollout-harness-owner, a random id in it) into its cluster and records, in the cache directory next to
the kubeconfig, that id, the uid the API server gave the ConfigMap and the API server's address. A cluster is the
harness's own when it is reached at that address and holds that ConfigMap (`why_not_own`); only then does the harness
freeze its nodes (node-down), load through NodePorts on 127.0.0.1 and drain without being allowed to.

`up` may mark the cluster it works on because that is always the kind cluster named rollout-harness in the local
docker: one it has just created, or the running one whose kubeconfig it has just exported from there (`kind export
kubeconfig`), so the address recorded is that container's port on 127.0.0.1. Marking is idempotent: a cluster that has
no marker (made before markers existed) gets one at the next `up`, and one already marked (say from another cache
directory: another HOME or RH_CACHE) keeps its marker, which this cache directory then records too. `down` forgets
the record.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ApiError, ClusterError
from harness.resources import cache_dir

if TYPE_CHECKING:  # the client is loaded by the caller: `down` forgets without it
    from harness.kube import Kube

NAMESPACE = "kube-system"
NAME = "rollout-harness-owner"


def record_path(cluster: str) -> Path:
    return cache_dir() / f"owner-{cluster}.json"


def mark(kube: Kube, cluster: str) -> None:
    """Make sure the cluster `kube` reaches carries the marker (creating it if it has none), and record it."""
    cm = kube.config_map(NAMESPACE, NAME)
    if cm is None:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME}, "data": {"id": uuid.uuid4().hex}}
        try:
            kube.create(NAMESPACE, body)
        except ApiError as e:
            if e.status != 409:  # 409: another `up` marked it just now; record that one
                raise
        cm = kube.config_map(NAMESPACE, NAME)
    if cm is None:
        raise ClusterError(f"failed to mark the cluster: {NAMESPACE}/{NAME} is gone right after it was created")
    path = record_path(cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"id": cm.data.get("id", ""), "uid": cm.uid, "server": kube.server}))
    tmp.replace(path)


def forget(cluster: str) -> None:
    record_path(cluster).unlink(missing_ok=True)


def why_not_own(kube: Kube, cluster: str) -> str:
    """ "" when the cluster `kube` reaches is the harness's own cluster named `cluster` (see the module's docstring);
    else why it is not, in a few words."""
    path = record_path(cluster)
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return f"`up` has marked no cluster from this cache directory ({path} is missing)"
    if kube.server != rec.get("server"):
        return f"it is reached at {kube.server}, not at {rec.get('server')} where `up` marked its cluster"
    try:
        cm = kube.config_map(NAMESPACE, NAME)
    except ApiError as e:
        return f"its marker cannot be read ({e})"
    if cm is None:
        return f"it carries no marker ({NAMESPACE}/{NAME}, which `up` writes into its own cluster)"
    if (cm.uid, cm.data.get("id")) != (rec.get("uid"), rec.get("id")):
        return f"its marker is not the one `up` recorded in {path}"
    return ""
