"""The two paths `up` takes (provision.NodeImage): the choice, and what differs on the cluster (kind config, node
network set-up, CoreDNS, probe base), without a cluster, docker or a network."""

from __future__ import annotations

import pytest
import yaml

from harness import netguard, network, resources
from harness.cluster import image_reason, kind_config
from harness.network import NetSettings, ProxyMode
from harness.pinned import Pinned
from harness.provision import OFFLINE_PYTHON_BASE, NodeImage, Source, choose

V = resources.versions()


def _never() -> bool:
    raise AssertionError("the registry was asked although the choice did not need it")


@pytest.mark.parametrize(
    ("offline", "built", "answers", "source", "why"),
    [
        ("yes", False, _never, Source.OFFLINE, "asked for (--offline yes)"),
        ("no", True, _never, Source.STOCK, "asked for (--offline no)"),
        ("auto", True, _never, Source.OFFLINE, "the offline node image is already built here (--offline no pulls kindest/node)"),
        ("auto", False, lambda: True, Source.STOCK, "a container registry answers (registry-1.docker.io:443)"),
        ("auto", False, lambda: False, Source.OFFLINE, "no container registry answers (registry-1.docker.io:443)"),
    ],
)
def test_the_path_is_chosen_once_with_its_reason(offline: str, built: bool, answers, source: Source, why: str) -> None:
    node = choose(offline, V, built, answers)
    assert (node.source, node.why) == (source, why)
    line = node.describe()
    assert "\n" not in line and line.startswith(f"node image: {source.value} {node.image} (") and line.endswith(f"): {why}")


def test_what_each_path_means_for_the_cluster() -> None:
    stock, offline = NodeImage.of(Source.STOCK, V, ""), NodeImage.of(Source.OFFLINE, V, "")
    assert (stock.image, stock.kind_cni, stock.own_dns, stock.probe_base) == (V["STOCK_NODE_IMAGE"], True, True, V["PYTHON_BASE"])
    assert (offline.image, offline.kind_cni, offline.own_dns, offline.probe_base) == (
        f"rollout-harness/kind-node:{V['K8S_VERSION']}-offline",
        False,
        False,
        OFFLINE_PYTHON_BASE,
    )


def test_the_stock_pins_are_digests_of_the_pinned_kubernetes_minor() -> None:
    """kind publishes one node image per Kubernetes minor with each release: its minor is the offline build's."""
    node, base = Pinned.parse(V["STOCK_NODE_IMAGE"]), Pinned.parse(V["PYTHON_BASE"])
    assert node.name == "kindest/node" and node.tag.rsplit(".", 1)[0] == V["K8S_VERSION"].rsplit(".", 1)[0]
    assert base.name == "python" and base.tag.startswith("3.11")


@pytest.mark.parametrize("mode", list(ProxyMode))
def test_kinds_own_cni_only_on_the_stock_path(mode: ProxyMode) -> None:
    stock, offline = yaml.safe_load(kind_config(mode, kind_cni=True)), yaml.safe_load(kind_config(mode, kind_cni=False))
    assert offline["networking"].pop("disableDefaultCNI") is True
    assert "disableDefaultCNI" not in stock["networking"]
    assert stock == offline  # nothing else differs: same subnets (netguard routes them), nodes, port mappings
    assert stock["networking"] == {"kubeProxyMode": mode.value, "podSubnet": netguard.POD_CIDR, "serviceSubnet": netguard.SERVICE_CIDR}


NODES = [["c", "10.244.0.0/24", "172.18.0.2"], ["w1", "10.244.1.0/24", "172.18.0.3"], ["w2", "10.244.2.0/24", "172.18.0.4"]]


@pytest.mark.parametrize("settings", [NetSettings(), NetSettings(netguard.DeadPodIP.DROP, False)])
def test_the_dead_pod_ip_guard_is_set_on_both_paths_the_static_cni_only_offline(settings: NetSettings) -> None:
    guard = netguard.node_script(settings.dead_pod_ip, settings.icmp_ratelimit_off)
    assert network.node_setup("w1", NODES, settings, static=False) == guard  # kindnetd: routes and conflist its own
    offline = network.node_setup("w1", NODES, settings, static=True)
    assert guard in offline and "10-rollout-harness.conflist" in offline and '"subnet": "10.244.1.0/24"' in offline
    assert offline.endswith("ip route replace 10.244.0.0/24 via 172.18.0.2 && ip route replace 10.244.2.0/24 via 172.18.0.4")


def test_a_cluster_made_from_the_other_node_image_is_recreated() -> None:
    stock = V["STOCK_NODE_IMAGE"]
    assert image_reason([stock] * 3, stock) is None
    assert (
        image_reason(["rollout-harness/kind-node:v1-offline"] * 3, stock)
        == f"runs node image rollout-harness/kind-node:v1-offline, not {stock}"
    )
