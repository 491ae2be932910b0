"""The cluster add-ons (manifests/addons: Traefik for `--via ingress`, metrics-server for HPA scale-in) agree with
what builds and runs them: each image is the tag its ci/build-*.sh script makes from ci/versions.env and is never
pulled, Traefik sits on the node kind labels for it and on a node port kind maps to the host, and the two Ingress
variants differ by the retry middleware alone, which the controller defines."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import cluster
from harness.manifests import load_workload, with_ingress

REPO = Path(__file__).resolve().parents[1]  # the source tree (test_packaging checks that the wheel carries these files)
ADDONS = REPO / "manifests" / "addons"
VERSIONS = dict(line.split("=", 1) for line in (REPO / "ci" / "versions.env").read_text().splitlines() if line[:1].isupper())
IMAGES = {"traefik": "TRAEFIK_VERSION", "metrics-server": "METRICS_SERVER_VERSION"}
RETRY = "traefik.ingress.kubernetes.io/router.middlewares"


def _objects(name: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((ADDONS / name).read_text()) if o]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = (o for o in objects if o["kind"] == kind)
    return found


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_each_addon_runs_the_image_its_script_builds_and_never_pulls(name: str) -> None:
    deployment = _one(_objects(f"{name}.yaml"), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"rollout-harness/{name}:{VERSIONS[IMAGES[name]]}"
    assert container["imagePullPolicy"] == "Never"
    assert (REPO / "ci" / f"build-{name}.sh").is_file()


def test_traefik_runs_on_the_ingress_node_behind_a_port_kind_maps_to_the_host() -> None:
    objects = _objects("traefik.yaml")
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"rollout-harness/role": "ingress"}
    assert "labels: {rollout-harness/role: ingress}" in cluster.kind_config()
    (port,) = _one(objects, "Service")["spec"]["ports"]
    assert port["nodePort"] == cluster.INGRESS_NODEPORT in cluster.NODEPORTS and port["nodePort"] not in cluster.WORKLOAD_NODEPORTS
    assert any(f"containerPort: {port['nodePort']}, hostPort: {port['nodePort']}" in line for line in cluster.kind_config().splitlines())


def test_the_ingress_variants_differ_by_the_retry_middleware_the_controller_defines() -> None:
    (off,) = _objects("traefik-ingress.yaml")
    (on,) = _objects("traefik-ingress-retry.yaml")
    middleware = on["metadata"]["annotations"][RETRY]
    stripped = copy.deepcopy(on)
    del stripped["metadata"]["annotations"]
    assert stripped == off
    name, provider = middleware.split("@")
    assert provider == "file"
    dynamic = yaml.safe_load(_one(_objects("traefik.yaml"), "ConfigMap")["data"]["middlewares.yaml"])
    assert set(dynamic["http"]["middlewares"][name]) == {"retry"}
    assert off["spec"]["ingressClassName"] == _one(_objects("traefik.yaml"), "IngressClass")["metadata"]["name"]


def test_metrics_server_accepts_kinds_self_signed_kubelet_certificates() -> None:
    (container,) = _one(_objects("metrics-server.yaml"), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert "--kubelet-insecure-tls" in container["args"]


@pytest.mark.parametrize("retry", [False, True])
def test_a_cells_ingress_routes_its_route_host_to_its_load_service(retry: bool) -> None:
    """manifests.with_ingress: the Ingress of traefik-ingress(-retry).yaml, its backend the variant's load Service and
    port (a workload's own, not the base's web:80), its rule the cell's host; applied twice, still one Ingress."""
    v = load_workload(REPO / "tests" / "examples" / "shop-api.yaml")
    once = with_ingress(v, retry)
    routed = with_ingress(once, retry, "rh-x.ingress.rollout-harness.test")
    (ingress,) = (o for o in routed.objects if o["kind"] == "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "rh-x.ingress.rollout-harness.test" and "host" not in once.objects[-1]["spec"]["rules"][0]
    service = {"name": v.service["metadata"]["name"], "port": {"number": v.service["spec"]["ports"][0]["port"]}}
    assert rule["http"]["paths"][0]["backend"]["service"] == service != {"name": "web", "port": {"number": 80}}
    assert (RETRY in ingress["metadata"].get("annotations", {})) is retry
    assert len(routed.objects) == len(v.objects) + 1
