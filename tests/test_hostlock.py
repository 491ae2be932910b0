"""Host locks between harness processes: a second holder waits (and says so), a dead holder frees the lock."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import cluster, hostlock, sh
from harness.deploy import PortPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]  # every test starts Python processes
HOLD = """import sys, time
from harness import hostlock
with hostlock.held(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))"""


def _holder(name: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, name, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_CACHE", str(tmp_path))


async def test_second_holder_waits_for_the_first_and_says_so() -> None:
    proc = _holder("drain", 1.0)
    waits: list[float] = []
    t = time.monotonic()
    async with hostlock.held_async("drain", lambda: waits.append(time.monotonic())):
        took = time.monotonic() - t
    proc.communicate(timeout=5)
    assert len(waits) == 1 and 0.5 < took < 5


async def test_placements_share_the_lock_a_drain_holds_alone() -> None:
    """Pods are placed (shared) together, never while a drain holds a node away (exclusive), nor a drain during a
    placement: in one process too (each holder opens its own descriptor)."""
    order: list[str] = []

    async def hold(name: str, shared: bool, seconds: float) -> None:
        async with hostlock.held_async("drain", lambda: order.append(f"{name} waits"), shared=shared):
            order.append(f"{name} in")
            await asyncio.sleep(seconds)
            order.append(f"{name} out")

    place_a = asyncio.create_task(hold("place a", True, 0.6))
    await asyncio.sleep(0.1)
    place_b = asyncio.create_task(hold("place b", True, 0.1))
    await asyncio.sleep(0.05)
    drain = asyncio.create_task(hold("drain", False, 0.3))
    await asyncio.sleep(0.05)
    place_c = asyncio.create_task(hold("place c", True, 0.1))
    await asyncio.gather(place_a, place_b, drain, place_c)
    assert order.index("place b in") < order.index("place a out")  # two placements at once
    assert order.index("drain in") > order.index("place a out") and "drain waits" in order
    assert order.index("place c in") > order.index("drain out") or order.index("place c out") < order.index("drain in")


async def test_a_killed_holder_leaves_no_lock_behind() -> None:
    proc = _holder("drain", 60)
    proc.kill()
    proc.communicate(timeout=5)
    waits: list[float] = []
    async with asyncio.timeout(2):
        async with hostlock.held_async("drain", lambda: waits.append(0)):
            pass
    assert waits == []


def test_free_tells_a_live_holder_from_a_dead_one() -> None:
    """What `up` asks before thawing a frozen node: a live node-down run holds `drain`; a killed one does not."""
    assert hostlock.free("drain")
    proc = _holder("drain", 60)
    assert not hostlock.free("drain")
    proc.kill()
    proc.communicate(timeout=5)
    assert hostlock.free("drain")


def test_port_pool_hands_concurrent_processes_different_ports(tmp_path: Path) -> None:
    state = tmp_path / "nodeports.json"
    code = (
        f"from harness.deploy import PortPool; print(PortPool(range(30080, 30084), __import__('pathlib').Path({str(state)!r})).take(set()))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    ports = sorted(int(p.communicate(timeout=20)[0]) for p in procs)
    assert ports == [30080, 30081, 30082, 30083]
    assert PortPool(range(30080, 30084), state).take(set()) == 30080  # the least recently used comes round again


CLUSTER_LOCK = """import logging, sys, time
from harness import cluster, progress
with progress.logging_to(sys.stderr, {"harness": logging.INFO}):
    with cluster._locked("rh-test", sys.argv[1]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))"""


def _cluster_locker(verb: str, seconds: float, lock_dir: Path, cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "RH_LOCK_DIR": str(lock_dir), "RH_CACHE": str(cache)}
    cmd = [sys.executable, "-c", CLUSTER_LOCK, verb, str(seconds)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_second_up_waits_for_the_cluster_lock_and_says_so_whatever_its_cache(tmp_path: Path) -> None:
    """`up` and `down` take one lock per cluster, host-wide: processes with different caches (HOMEs) share it."""
    first = _cluster_locker("up", 1.0, tmp_path / "locks", tmp_path / "a")
    assert first.stdout is not None and first.stdout.readline().strip() == "held"
    t = time.monotonic()
    second = _cluster_locker("down", 0, tmp_path / "locks", tmp_path / "b")
    out, err = second.communicate(timeout=10)
    first.communicate(timeout=5)
    assert out == "held\n" and 0.5 < time.monotonic() - t < 5
    assert err == "[down] another harness process is bringing cluster rh-test up or down; waiting for it\n"


def test_a_cancelled_up_stops_waiting_for_the_cluster_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_LOCK_DIR", str(tmp_path / "locks"))
    holder = _cluster_locker("up", 30, tmp_path / "locks", tmp_path / "a")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    outcome: list[str] = []

    def up() -> None:
        with sh.cancellable():
            try:
                with cluster._locked("rh-test", "up"):
                    outcome.append("held")
            except sh.Cancelled:
                outcome.append("cancelled")

    try:
        t = threading.Thread(target=up)
        t.start()
        time.sleep(0.5)
        sh.cancel_running()
        t.join(3)
    finally:
        holder.kill()
        holder.communicate(timeout=5)
    assert outcome == ["cancelled"]


def test_the_system_lock_dir_is_made_for_every_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RH_LOCK_DIR", str(tmp_path / "locks"))
    with hostlock.system_held("x", lambda: None, lambda: None):
        pass
    assert stat.S_IMODE((tmp_path / "locks").stat().st_mode) == 0o1777
    assert stat.S_IMODE((tmp_path / "locks" / "x.lock").stat().st_mode) == 0o644
