"""What the triggers act on, read from the loaded manifests (variants are data, not code): the Deployment's name,
its pod selector, the container to re-image and the Service in front of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import UsageError


@dataclass(frozen=True)
class Workload:
    deployment: str
    selector: str  # label selector text, e.g. "app=web"
    container: str  # the container whose image set-image changes (the first one)
    image: str  # that container's image as deployed, e.g. "rollout-harness/probe-app:v1"
    service: str
    replicas: int
    kind: str = "Deployment"
    """Deployment, StatefulSet or DaemonSet; `deployment` is its name either way."""
    autoscaler: str = ""
    """The name of the HorizontalPodAutoscaler among the variant's objects that scales it ("" if none)."""

    @property
    def image_repo(self) -> str:
        """The image without its tag (a registry host's port is kept)."""
        head, _, tail = self.image.rpartition(":")
        return head if head and "/" not in tail else self.image

    @classmethod
    def from_objects(cls, deployment: dict[str, Any], service: dict[str, Any], objects: tuple[dict[str, Any], ...] = ()) -> Workload:
        name = deployment.get("metadata", {}).get("name")
        hpas = [
            o["metadata"]["name"]
            for o in objects
            if o.get("kind") == "HorizontalPodAutoscaler" and (o.get("spec") or {}).get("scaleTargetRef", {}).get("name") == name
        ]
        try:
            labels = deployment["spec"]["selector"]["matchLabels"]
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            return cls(
                deployment=deployment["metadata"]["name"],
                selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                container=container["name"],
                image=container["image"],
                service=service["metadata"]["name"],
                replicas=int(deployment["spec"].get("replicas", 1)),
                kind=deployment.get("kind", "Deployment"),
                autoscaler=hpas[0] if hpas else "",
            )
        except (KeyError, IndexError, TypeError) as e:
            raise UsageError(
                f"the Deployment/Service manifests lack {e} (need metadata.name, spec.selector.matchLabels, a container)"
            ) from e
