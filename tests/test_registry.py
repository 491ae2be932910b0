"""Discovery through a service registry: the registry's leases and statuses (unit), its listing as the client reads
it (unit), and, with real processes on loopback, the probe app as the registry, two app instances that register and
heartbeat, and the real load generator listing them (a gone instance is an address where nothing listens: refused).

Times are compared on CLOCK_MONOTONIC (shared with the generator): a record started at result.t0_mono + record.start."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support import ProbeApps, collect, free_port

from harness.cell import cell_variant
from harness.deploy import render
from harness.errors import HarnessError, UsageError
from harness.load import LoadSpec, run_load
from harness.manifests import REGISTRY, load_variant, registry_port
from harness.model import ConnMode, Discovery, RunOptions, Traffic
from harness.records import RequestRecord
from harness.registryclient import RegistryError, fetch, parse, wait_listed
from probe_app.local import LocalApp
from probe_app.registry import DOWN, UP, Registry, Settings, main

# --- the registry's bookkeeping, on a clock the test sets -----------------------------------------------------------


def test_an_instance_is_listed_while_up_and_its_lease_is_fresh() -> None:
    evicted: list[str] = []
    r = Registry(expiry=30, on_evict=lambda i: evicted.append(i.id))
    r.register("a", "10.0.0.1:8080", now=0)
    r.register("b", "10.0.0.2:8080", now=0)
    assert [i.id for i in r.listed(now=30)] == ["a", "b"]  # 30 s after the last heartbeat: still listed
    assert r.heartbeat("a", now=20)
    assert [i.id for i in r.listed(now=30.5)] == ["a"] and evicted == ["b"]  # b's lease expired: b is forgotten
    assert not r.heartbeat("b", now=31)  # a late heartbeat is refused: b must register again
    r.register("b", "10.0.0.2:8080", now=31)
    assert [i.id for i in r.listed(now=31)] == ["a", "b"]


def test_down_hides_an_instance_through_its_heartbeats_until_up() -> None:
    r = Registry(expiry=30)
    r.register("a", "10.0.0.1:8080", now=0)
    r.register("b", "10.0.0.2:8080", now=0)
    assert r.set_status("a", DOWN, now=1)
    assert r.heartbeat("a", now=5)  # the lease goes on, the status stays (as Eureka keeps an override)
    assert [i.id for i in r.listed(now=6)] == ["b"]
    assert r.set_status("a", UP, now=7)
    assert [i.id for i in r.listed(now=7)] == ["a", "b"]
    assert r.delete("a") and not r.delete("a")
    assert not r.set_status("a", DOWN, now=8) and not r.heartbeat("a", now=8)
    assert [i.id for i in r.listed(now=8)] == ["b"]


def test_settings_from_env() -> None:
    env = {"ROLE": "registry", "REGISTRY_URL": "http://registry/", "POD_IP": "10.1.2.3", "HEARTBEAT_SECONDS": "2", "EXPIRY_SECONDS": "6"}
    assert Settings.from_env(env) == Settings("registry", "http://registry", "10.1.2.3", 2.0, 6.0)
    default = Settings.from_env({})
    assert (default.role, default.registry_url, default.heartbeat_seconds, default.expiry_seconds) == ("", "", 5.0, 30.0)
    assert default.pod_ip  # what the hostname resolves to


def test_the_down_command_refuses_bad_use_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sideways"], {}) == 2
    assert main(["down"], {"POD_NAME": "web-1"}) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "usage: python3 -m probe_app.registry down|up",
        "probe_app.registry: REGISTRY_URL is not set",
    ]


def _response(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_the_client_reads_a_listing_and_names_what_is_wrong_with_one() -> None:
    listing = parse(_response("200 OK", b'{"expiry": 15, "instances": [{"id": "a", "address": "10.0.0.1:8080"}]}'))
    assert listing.instances == (("a", "10.0.0.1:8080"),) and listing.expiry == 15
    for raw, why in [
        (_response("503 Service Unavailable", b""), "HTTP 503"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x response"),
        (_response("200 OK", b"{"), "bad listing (JSONDecodeError"),
        (_response("200 OK", b'{"expiry": 15, "instances": [{"id": "a"}]}'), "bad listing (KeyError"),
        (_response("200 OK", b'{"expiry": 15, "instances": [{"id": "a", "address": "10.0.0.1"}]}'), "bad listing (ValueError"),
        (_response("200 OK", b'{"expiry": 15, "instances": [{"id": "a", "address": "a:99999"}]}'), "bad listing (ValueError"),
    ]:
        with pytest.raises(RegistryError) as e:
            parse(raw)
        assert str(e.value).startswith(why)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_registry_variants_carry_their_registry_and_the_recipe() -> None:
    naive, recipe = load_variant("registry-naive"), load_variant("registry-down-prestop")
    assert naive.chain == ("registry-naive", "graceful-app", "readiness", "naive") and recipe.chain[1] == "registry-naive"
    app = naive.deployment["spec"]["template"]["spec"]["containers"][0]
    env = _env(app)
    assert env["REGISTRY_URL"] == f"http://{REGISTRY}" and env["POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["SHUTDOWN"] == "graceful" and "lifecycle" not in app  # nothing deregisters it
    (dep,) = [o for o in naive.objects if o["kind"] == "Deployment"]
    (svc,) = [o for o in naive.objects if o["kind"] == "Service"]
    pod = dep["spec"]["template"]
    assert dep["spec"]["replicas"] == 1 and _env(pod["spec"]["containers"][0])["ROLE"] == "registry"
    assert (
        svc["metadata"]["name"] == REGISTRY
        and svc["spec"]["selector"] == pod["metadata"]["labels"] == dep["spec"]["selector"]["matchLabels"]
    )
    assert svc["spec"]["selector"] != naive.deployment["spec"]["selector"]["matchLabels"]  # not one of the workload's pods
    assert registry_port(naive) == registry_port(recipe) == 80
    # the numbers the known answers rest on: a lease outlives 3 heartbeats; the preStop sleep outlasts the client's fetch
    heartbeat, expiry = float(env["HEARTBEAT_SECONDS"]), float(_env(pod["spec"]["containers"][0])["EXPIRY_SECONDS"])
    assert (heartbeat, expiry, Traffic().registry_fetch) == (5, 15, 5)
    command = recipe.deployment["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command == ["sh", "-c", "python3 -m probe_app.registry down; sleep 8"]
    assert Traffic().registry_fetch < 8 and recipe.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 8 + 5
    assert {o["kind"] for o in render(recipe, None, {})} == {"Deployment", "Service"} and len(render(recipe, None, {})) == 4


def test_discovery_registry_needs_a_variant_with_a_registry() -> None:
    opts = RunOptions.of(client="pod", discovery="registry")
    assert cell_variant(opts, "registry-down-prestop").objects == load_variant("registry-down-prestop").objects
    with pytest.raises(UsageError, match="variant 'readiness': --discovery registry needs a service registry among its objects"):
        cell_variant(opts, "readiness")
    assert opts.provenance(ConnMode.NEW)["discovery"] == "registry" and "registry_fetch" not in opts.provenance(ConnMode.NEW)
    assert RunOptions.of(client="pod", discovery="registry", registry_fetch=30.0).provenance(ConnMode.NEW)["registry_fetch"] == 30.0


# --- real processes on loopback ---------------------------------------------------------------------------------------

HEARTBEAT, EXPIRY, FETCH = 0.5, 2.0, 0.5
"""The loopback runs' timings: Eureka's (30 s, 90 s, 30 s) shrunk so that a lease outlives a heartbeat 4 times."""


def _registry(apps: ProbeApps) -> LocalApp:
    return apps.start(ROLE="registry", EXPIRY_SECONDS=str(EXPIRY), POD_NAME="registry")


def _instance(apps: ProbeApps, reg: LocalApp, name: str) -> LocalApp:
    return apps.start(REGISTRY_URL=f"http://127.0.0.1:{reg.port}", POD_IP="127.0.0.1", HEARTBEAT_SECONDS=str(HEARTBEAT), POD_NAME=name)


async def _listed(reg: LocalApp) -> dict[str, str]:
    return dict((await fetch("127.0.0.1", reg.port)).instances)


@pytest.mark.integration
async def test_instances_register_once_ready_and_again_after_the_registry_restarts(probe_apps: ProbeApps) -> None:
    reg = _registry(probe_apps)
    a, b = _instance(probe_apps, reg, "app-a"), _instance(probe_apps, reg, "app-b")
    await wait_listed(reg.url, 10, frozenset({"app-a", "app-b"}))
    assert await _listed(reg) == {"app-a": f"127.0.0.1:{a.port}", "app-b": f"127.0.0.1:{b.port}"}
    reg.stop()
    with pytest.raises(RegistryError, match="ConnectionRefusedError"):
        await fetch("127.0.0.1", reg.port)
    again = probe_apps.start(reg.port, ROLE="registry", EXPIRY_SECONDS=str(EXPIRY), POD_NAME="registry")
    # the instances' heartbeats meet a registry that does not know them (404): each registers again
    await wait_listed(again.url, 10, frozenset({"app-a", "app-b"}))
    assert "registered at" in a.output() and "registering again" in a.output()


async def _load(
    reg: LocalApp, duration: float, at: float, action: Callable[[], Awaitable[float]]
) -> tuple[list[RequestRecord], float, float]:
    """Load through the registry for `duration` s; `at` s after its start, run `action` (which returns the time it took
    effect). Returns the records in seq order, the load's t0 and the action's time (both monotonic)."""
    spec = LoadSpec(url=f"http://127.0.0.1:{reg.port}/", rate=200, duration=duration, discovery=Discovery.REGISTRY, registry_fetch=FETCH)
    records: list[RequestRecord] = []
    load = asyncio.create_task(run_load(spec, records.append))
    await asyncio.sleep(at)
    acted = await action()
    result = await load
    assert result.sent == len(records) == int(200 * duration)
    return sorted(records, key=lambda r: r.seq), result.t0_mono, acted


async def _term(app: LocalApp) -> float:
    app.proc.send_signal(signal.SIGTERM)
    return time.monotonic()


@pytest.mark.integration
async def test_a_gone_instance_is_called_until_its_lease_expires(probe_apps: ProbeApps) -> None:
    """Known answer, the naive case. app-a exits at SIGTERM and never deregisters: the registry lists it until its
    lease expires (EXPIRY after its last heartbeat, so EXPIRY - HEARTBEAT to EXPIRY after the exit) and the client
    keeps that listing up to FETCH more. Half the requests are refused meanwhile; none after."""
    reg = _registry(probe_apps)
    a, _b = _instance(probe_apps, reg, "app-a"), _instance(probe_apps, reg, "app-b")
    await wait_listed(reg.url, 10, frozenset({"app-a", "app-b"}))
    records, t0, killed = await _load(reg, 5.0, 1.0, lambda: _term(a))
    refused = [r for r in records if r.kind == "refused"]
    assert {r.kind for r in records} <= {"ok", "refused", "reset"}
    resets = [r.start for r in records if r.kind == "reset"]  # in flight, or not yet accepted, when it exited
    assert all(start < min(r.start for r in refused) + 0.2 for start in resets), (resets, killed - t0)
    last = max(t0 + r.start for r in refused)
    assert {r.pod for r in records if r.kind == "ok" and t0 + r.start > killed + 0.3} == {"app-b"}  # the live instance answers
    assert killed + EXPIRY - HEARTBEAT - 0.2 <= last <= killed + EXPIRY + FETCH + 0.5  # it lasted until the lease expired
    assert len(refused) >= 0.3 * 200 * (EXPIRY - HEARTBEAT)  # about half the requests meanwhile
    assert all(r.kind == "ok" for r in records if t0 + r.start > last + 0.1)


async def _down_then_term(app: LocalApp, reg: LocalApp, sleep: float) -> float:
    """The preStop recipe: `python3 -m probe_app.registry down`, then sleep, then SIGTERM. Returns when DOWN took effect."""
    env = {"REGISTRY_URL": f"http://127.0.0.1:{reg.port}", "POD_NAME": "app-a"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "probe_app.registry", "down", env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0 and "app-a DOWN at" in err.decode(), err.decode()
    marked = time.monotonic()
    await asyncio.sleep(sleep)
    await _term(app)
    return marked


@pytest.mark.integration
async def test_an_instance_marked_down_is_dropped_at_the_next_fetch(probe_apps: ProbeApps) -> None:
    """Known answer, the recipe. app-a is marked DOWN, then gets SIGTERM FETCH + 1 s later (its preStop sleep, longer
    than the client's fetch interval): the client stops calling it within one fetch interval of the DOWN, before it
    exits, and nothing fails."""
    reg = _registry(probe_apps)
    a, _b = _instance(probe_apps, reg, "app-a"), _instance(probe_apps, reg, "app-b")
    await wait_listed(reg.url, 10, frozenset({"app-a", "app-b"}))
    records, t0, marked = await _load(reg, 4.0, 1.0, lambda: _down_then_term(a, reg, FETCH + 1.0))
    assert {r.kind for r in records} == {"ok"}
    last_a = max(t0 + r.start for r in records if r.pod == "app-a")
    assert last_a <= marked + FETCH + 0.3
    assert a.proc.wait(timeout=5) is not None


@pytest.mark.integration
async def test_a_failed_fetch_fails_the_requests_that_waited_for_it(probe_apps: ProbeApps) -> None:
    """The registry exits during the load: from the first fetch after that, every request fails as `other` with a
    `registry:` detail (the client has no list to call), as a failed DNS lookup does with `dns:`."""
    reg = _registry(probe_apps)
    _instance(probe_apps, reg, "app-a")
    await wait_listed(reg.url, 10, frozenset({"app-a"}))

    async def stop() -> float:
        reg.stop()
        return time.monotonic()

    records, t0, stopped = await _load(reg, 3.0, 1.0, stop)
    failed = [r for r in records if r.kind != "ok"]
    assert {r.kind for r in failed} == {"other"} and all(r.detail.startswith("registry:") for r in failed)
    assert "registry:ConnectionRefusedError" in {r.detail for r in failed}
    assert all(t0 + r.start > stopped - 0.1 for r in failed)
    assert all(r.kind == "other" for r in records if t0 + r.start > stopped + FETCH + 0.3)


@pytest.mark.integration
async def test_a_registry_that_does_not_answer_stops_the_load_before_it_starts() -> None:
    spec = LoadSpec(url=f"http://127.0.0.1:{free_port()}/", rate=10, duration=1, discovery=Discovery.REGISTRY)
    with pytest.raises(HarnessError, match=r"^--discovery registry: cannot list the instances at .*: ConnectionRefusedError$"):
        await collect(spec)
