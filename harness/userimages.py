"""Your own images onto the harness's kind cluster (`rollout-harness load-image`, the pytest fixture `load_image`):
checked first, each fault one line, then `kind load docker-image` (harness.cluster.load_images), so a workload can
name an image no registry holds.

Checked in this order, before anything is loaded: docker answers (else EnvironmentProblem, exit 3), every image is
in the local docker (else UsageError naming the missing ones, exit 2), the cluster exists (else ClusterError, exit 3).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import cluster, provision
from harness.errors import ClusterError, EnvironmentProblem, HarnessError, UsageError


def problem(images: Sequence[str], missing: Sequence[str], docker_up: bool, cluster_up: bool, name: str) -> HarnessError | None:
    """What stops loading `images` into cluster `name`, given what was found: `missing` (the images docker does not
    have), whether docker answers and whether the cluster exists; None if nothing does."""
    if not images:
        return UsageError("no image given; name one or more local images (docker images lists them)")
    if not docker_up:
        return EnvironmentProblem("docker does not answer; start it (`rollout-harness up` does) and build or pull the images")
    if missing:
        which = ", ".join(missing)
        return UsageError(f"not in the local docker images: {which}; build or pull {'it' if len(missing) == 1 else 'them'} first")
    if not cluster_up:
        return ClusterError(f"no cluster {name}; bring it up first (`rollout-harness up`)")
    return None


def load(images: Sequence[str], name: str = cluster.CLUSTER) -> None:
    """Load local docker `images` into the kind cluster `name`, after the checks (see the module's docstring)."""
    docker_up = bool(images) and provision.docker_answers()
    missing = [i for i in images if not provision.image_present(i)] if docker_up else []
    exists = docker_up and not missing and cluster.cluster_exists(name)
    if err := problem(images, missing, docker_up, exists, name):
        raise err
    cluster.load_images(tuple(images), name)
