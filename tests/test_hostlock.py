"""Host locks between harness processes: a second holder waits (and says so), a dead holder frees the lock."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import hostlock
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
