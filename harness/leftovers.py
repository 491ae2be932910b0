"""What harness processes left behind, in one place: what dead ones left is undone at every connect (run, compare,
the pytest plugin) and at `up` (`repair`); `census` counts everything the harness makes that is still there, for a
moment when no harness command runs (the fault bench's check after each fault, and the e2e tier's last test).

What the harness makes, and who undoes it when its maker was killed:
  namespaces    namespaces with its label and an owner annotation (harness.owner): repair, when the owner is gone
  cordons       nodes carrying its cordon record (CORDONED_BY): repair, when the owner is gone
  freeze marks  nodes carrying its freeze record (FROZEN_BY): repair, when the owner is gone
  frozen nodes  paused node containers of its own cluster: harness.nodes.thaw_nodes, when no run holds `drain`
  records       /dev/shm/rh-records-PID.START-* directories (kill -9 skips their clean-up): repair, owner gone
  workers       load worker processes (python -m harness.loadworker): they stop by themselves when their stdin closes
                (their parent's end), so one that stays is a defect
  guard rules   its iptables rules (harness.netguard): `down` of the last harness cluster; one set while one runs
  host settings route.error_cost as recorded in the host record: `down` of the last harness cluster
A census counts a namespace that is terminating until it is gone (`census --wait` waits for such things).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from harness import disruption, netguard, nodes, owner

if TYPE_CHECKING:
    from harness.kube import Kube

log = logging.getLogger("harness.leftovers")

RECORDS_PREFIX = "rh-records-"
SHM = Path("/dev/shm")
PROC = Path("/proc")


@dataclass
class Found:
    """Leftovers by kind (see the module's docstring); what a census prints."""

    namespaces: list[str] = field(default_factory=list)
    cordons: list[str] = field(default_factory=list)
    freeze_marks: list[str] = field(default_factory=list)
    frozen_nodes: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)
    guard_rules: list[str] = field(default_factory=list)
    host_settings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {f.name: len(getattr(self, f.name)) for f in fields(self)}

    def total(self) -> int:
        return sum(self.counts().values())


def stale_namespaces(kube: Kube) -> list[str]:
    """Namespaces left by harness processes that are gone (not those already terminating)."""
    return [ns.name for ns in kube.managed_namespaces() if not ns.terminating and owner.gone(ns.owner)]


def stale_records(shm: Path = SHM) -> list[Path]:
    """Records directories of processes that are gone."""
    if not shm.is_dir():
        return []
    return [p for p in sorted(shm.glob(f"{RECORDS_PREFIX}*")) if owner.token_gone(p.name[len(RECORDS_PREFIX) :].split("-")[0])]


def workers(proc: Path = PROC) -> list[str]:
    """Load worker processes on this host (`pid N (parent P COMM)`)."""
    out = []
    for d in proc.glob("[0-9]*"):
        try:
            if b"harness.loadworker" not in (d / "cmdline").read_bytes().split(b"\0"):
                continue
            ppid = (d / "stat").read_text().rsplit(")", 1)[1].split()[1]
            parent = (proc / ppid / "comm").read_text().strip() if ppid != "0" else ""
        except OSError:
            continue
        out.append(f"pid {d.name} (parent {ppid} {parent})")
    return out


def repair(kube: Kube, own: bool) -> None:
    """Undo what harness processes that are gone left on the cluster `kube` reaches (namespaces, cordons, freeze
    marks; its frozen node containers are thawed before by harness.nodes.thaw_nodes) and on this host (records
    directories), one log line each."""
    for name in stale_namespaces(kube):
        log.info("[run] deleting %s, left by a harness process that is gone", name)
        kube.delete_namespace(name)
    disruption.repair(kube, own)
    for path in stale_records():
        log.info("[run] removing %s, left by a harness process that is gone", path)
        shutil.rmtree(path, ignore_errors=True)


def census(kube: Kube | None, cluster: str, expected_rules: int | None, record: Path) -> Found:
    """Everything the harness makes that is still there (see the module's docstring), undoing nothing. kube: the
    harness's own cluster (None: none runs); expected_rules: how many guard rules the running harness clusters need
    (None: none runs)."""
    shm = sorted(SHM.glob(f"{RECORDS_PREFIX}*")) if SHM.is_dir() else []
    found = Found(records=[str(p) for p in shm], workers=workers())
    if kube is not None:
        found.namespaces = [f"{ns.name} ({_who(ns.owner)})" for ns in kube.managed_namespaces()]
        ns = kube.nodes()
        found.cordons = [f"{n.name} ({_who(n.cordoned_by)})" for n in ns if n.cordoned_by]
        found.freeze_marks = [f"{n.name} ({_who(n.frozen_by)})" for n in ns if n.frozen_by]
        found.frozen_nodes = nodes.containers(cluster, "status=paused", check=False)
    rules = netguard.installed_rules()
    extra = len(rules) - (expected_rules or 0)
    found.guard_rules = rules[-extra:] if extra > 0 else []
    changed = netguard.recorded(record)
    if expected_rules is None and "error_cost" in changed:
        found.host_settings = [f"net.ipv4.route.error_cost changed (was {changed['error_cost']})"]
    return found


def _who(owner_: str) -> str:
    return f"by {owner_ or 'unknown'}, {'gone' if owner.gone(owner_) else 'alive or unknown'}"


def take_census(name: str, wait: float = 0) -> Found:
    """The census of this host and the harness's cluster `name` (if it runs), waiting up to `wait` seconds for what
    is still going away (terminating namespaces, workers that have not yet read their stdin's end)."""
    from harness import cluster  # harness.cluster imports this module when `up` repairs
    from harness.kube import Kube

    deadline = time.monotonic() + wait
    while True:
        running = cluster.harness_clusters()
        kube = Kube(cluster.kubeconfig_path(name)) if name in running and cluster.kubeconfig_path(name).exists() else None
        try:
            found = census(kube, name, netguard.rules_per_cluster() if running else None, cluster.host_record())
        finally:
            if kube is not None:
                kube.close()
        if not found.total() or time.monotonic() >= deadline:
            return found
        time.sleep(2)
