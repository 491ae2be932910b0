"""The e2e tier's last test (marked `last`: tests/conftest.py runs it after every other): the census finds nothing
left by the tests before it, then `down` followed by `up` and `down` leaves the host exactly as it was before that
`up`: packet rules, the sysctls of the network stack, /etc/docker, the installed packages, the running dockerd and
its networks. The session's cluster is brought back up at the end only when it is to be kept."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
from e2e.conftest import keep_cluster

from harness import cluster, leftovers

pytestmark = [pytest.mark.e2e, pytest.mark.last]

SYSCTL_ROOTS = ("net/ipv4", "net/ipv6/conf/all", "net/ipv6/conf/default", "net/bridge", "net/netfilter", "net/core")
VOLATILE = re.compile(r"(/conf/(?!all|default)|/neigh/(?!default)|nf_conntrack_count|route/flush|base_reachable_time)")
"""Per-interface entries (containers' veths come and go with them) and counters, which no setting is."""


def _cmd(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False).stdout


def _rules(tool: str) -> str:
    """A ruleset without its comments and packet counters."""
    lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", ln) for ln in _cmd(tool).splitlines() if not ln.startswith("#")]
    return "\n".join(lines)


def _sysctls() -> dict[str, str]:
    out = {}
    for root in SYSCTL_ROOTS:
        for p in sorted(Path("/proc/sys", root).rglob("*")):
            key = str(p.relative_to("/proc/sys"))
            if p.is_file() and not VOLATILE.search(key) and os.access(p, os.R_OK):
                try:
                    out[key] = p.read_text().strip()
                except OSError:
                    continue
    return out


def _tree(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot() -> dict[str, object]:
    """What `up` may touch on the host, as comparable values."""
    return {
        "iptables": _rules("iptables-save"),
        "ip6tables": _rules("ip6tables-save"),
        "sysctls": _sysctls(),
        "/etc/docker": _tree(Path("/etc/docker")),
        "packages": _cmd("dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n"),
        "dockerd": _cmd("pidof", "dockerd").strip(),
        "docker networks": _cmd("docker", "network", "ls", "--format", "{{.Name}} {{.Driver}}"),
        "records dirs": sorted(p.name for p in Path("/dev/shm").glob(f"{leftovers.RECORDS_PREFIX}*")),
    }


def _differences(before: dict[str, object], after: dict[str, object]) -> list[str]:
    out = []
    for key, was in before.items():
        now = after[key]
        if isinstance(was, dict) and isinstance(now, dict):
            out += [f"{key}: {k}: {was.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
        elif isinstance(was, str) and isinstance(now, str) and was != now:
            gone, new = set(was.splitlines()) - set(now.splitlines()), set(now.splitlines()) - set(was.splitlines())
            out += [f"{key}: - {ln}" for ln in sorted(gone)] + [f"{key}: + {ln}" for ln in sorted(new)]
        elif was != now:
            out.append(f"{key}: {was!r} -> {now!r}")
    return out


def test_nothing_left_then_host_as_found(kind_cluster: cluster.ClusterInfo, request: pytest.FixtureRequest) -> None:
    found = leftovers.take_census(cluster.CLUSTER, wait=180)
    assert found.total() == 0, f"left by the tests before: {found}"
    cluster.down()
    before = snapshot()
    try:
        cluster.up()
        during = snapshot()
        cluster.down()
        after = snapshot()
    finally:
        if keep_cluster(request.config):
            cluster.up()
    assert before["iptables"] != during["iptables"], "up changed no packet rule: the snapshot sees nothing"
    assert _differences(before, after) == []
