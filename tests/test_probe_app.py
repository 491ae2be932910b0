"""Known answers from the real probe app: a real process on a real port, real signals, the real load generator.

Times are compared on CLOCK_MONOTONIC (shared with the generator): a record started at result.t0_mono + record.start.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from support import ProbeApps, collect, http_get

from harness.cli import main
from harness.load import LoadResult, LoadSpec, run_load
from harness.model import ConnMode
from harness.records import RequestRecord
from harness.waiting import wait_for
from probe_app.app import Config
from probe_app.local import APP_VARS, LocalApp
from probe_app.registry import ENV_VARS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


async def load_with_signal(
    app: LocalApp, spec: LoadSpec, after: float, sig: signal.Signals = signal.SIGTERM
) -> tuple[list[RequestRecord], LoadResult, float]:
    """Run load; `after` seconds in, send `sig` to the app. Returns records, result and the signal's monotonic time."""
    records: list[RequestRecord] = []
    load = asyncio.create_task(run_load(spec, records.append))
    await asyncio.sleep(after)
    sent_at = time.monotonic()
    app.proc.send_signal(sig)
    result = await load
    return sorted(records, key=lambda r: r.seq), result, sent_at


def started(result: LoadResult, r: RequestRecord) -> float:
    return result.t0_mono + r.start


async def readyz_status_soon(app: LocalApp, want: int, within: float) -> int:
    """Poll /readyz until it answers `want`; raise after `within` seconds with the last status seen."""

    async def probe() -> tuple[int | None, str]:
        try:
            status = (await asyncio.to_thread(http_get, app.port, "/readyz", 0.5))[0]
        except OSError as e:
            return None, f"GET /readyz: {type(e).__name__}"
        return (status if status == want else None), f"GET /readyz: {status}"

    return await wait_for(probe, timeout=within, every=0.02, what=f"/readyz to answer {want}")


def test_config_from_env_reads_every_variable() -> None:
    env = {
        "PORT": "9090",
        "STARTUP_DELAY": "1.5",
        "READY_DELAY": "2",
        "SHUTDOWN": "graceful",
        "DRAIN_SECONDS": "0.5",
        "DRAIN_CLOSE": "0",
        "VERSION": "v9",
        "POD_NAME": "web-1",
        "HANG": "1",
        "H2_PORT": "9091",
        "GRPC_PORT": "9092",
        "MAX_CONN_AGE": "30",
        "DELAY": "0.25",
    }
    assert Config.from_env(env) == Config(9090, 1.5, 2.0, "graceful", 0.5, False, "v9", "web-1", True, 9091, 9092, 30.0, 0.25)
    assert set(env) | ENV_VARS == APP_VARS  # probe_app.local strips exactly these from the inherited environment
    default = Config.from_env({})
    assert (default.port, default.shutdown, default.drain_seconds, default.hang) == (8080, "immediate", 5.0, False)
    assert (default.h2_port, default.grpc_port, default.max_conn_age, default.delay) == (0, 0, 0.0, 0.0)  # HTTP/1.1 alone
    assert default.pod_name  # the hostname
    assert not Config.from_env({"HANG": "0"}).hang


async def test_graceful_drain_loses_nothing_until_the_listener_closes(probe_apps: ProbeApps) -> None:
    drain = 1.0
    app = probe_apps.start(SHUTDOWN="graceful", DRAIN_SECONDS=str(drain))
    spec = LoadSpec(url=app.url, rate=100.0, duration=3.0, connect_timeout=0.5, read_timeout=1.0)
    records: list[RequestRecord] = []
    load = asyncio.create_task(run_load(spec, records.append))
    await asyncio.sleep(0.8)
    term_at = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    readyz = await readyz_status_soon(app, 503, within=0.5)
    readyz_at = time.monotonic()
    result = await load
    assert await asyncio.to_thread(app.proc.wait, 10) == 0
    records.sort(key=lambda r: r.seq)

    assert readyz == 503, "/readyz did not turn 503 while draining"
    assert readyz_at < term_at + drain
    closed_at = term_at + drain  # the listener closes no earlier than this
    before_close = [r for r in records if started(result, r) < closed_at - 0.1]
    in_drain = [r for r in before_close if started(result, r) >= term_at]
    assert len(in_drain) >= 70, "the drain window should see ~100 requests"
    assert {r.kind for r in before_close} == {"ok"}, [r for r in before_close if r.kind != "ok"][:3]
    # known answer the other way: once the process is gone, traffic is lost, and it is counted
    after_exit = [r for r in records if started(result, r) > closed_at + 0.5]
    assert after_exit and {r.kind for r in after_exit} == {"refused"}


@pytest.mark.parametrize("drain_close", ["1", "0"])
async def test_graceful_drain_tells_keepalive_clients_to_leave(probe_apps: ProbeApps, drain_close: str) -> None:
    """While draining, responses carry `Connection: close` (so pooled connections leave before the exit resets
    them); DRAIN_CLOSE=0 keeps them open."""
    app = probe_apps.start(SHUTDOWN="graceful", DRAIN_SECONDS="2", DRAIN_CLOSE=drain_close)
    before = (await asyncio.to_thread(http_get, app.port, "/"))[1]
    app.proc.send_signal(signal.SIGTERM)
    await readyz_status_soon(app, 503, within=1.0)
    during = (await asyncio.to_thread(http_get, app.port, "/"))[1]
    assert before.get("Connection", "").lower() != "close"
    assert (during.get("Connection", "").lower() == "close") == (drain_close == "1"), during


async def test_immediate_shutdown_refuses_after_sigterm(probe_apps: ProbeApps) -> None:
    app = probe_apps.start(SHUTDOWN="immediate")
    spec = LoadSpec(url=app.url, rate=100.0, duration=2.0, connect_timeout=0.5, read_timeout=1.0)
    records, result, term_at = await load_with_signal(app, spec, after=0.7)
    assert await asyncio.to_thread(app.proc.wait, 10) == 0
    before = [r for r in records if started(result, r) < term_at]
    assert len(before) >= 50 and {r.kind for r in before} == {"ok"}
    failures = [r for r in records if r.failed]
    assert all(started(result, r) >= term_at - 0.05 for r in failures)  # nothing lost before the signal
    late = [r for r in records if started(result, r) > term_at + 0.3]
    assert len(late) >= 50 and {r.kind for r in late} == {"refused"}


async def test_ignored_sigterm_keeps_serving(probe_apps: ProbeApps) -> None:
    app = probe_apps.start(SHUTDOWN="ignore")
    spec = LoadSpec(url=app.url, rate=100.0, duration=1.5, connect_timeout=0.5, read_timeout=1.0)
    records, result, term_at = await load_with_signal(app, spec, after=0.5)
    assert len(records) == result.sent == 150
    assert {r.kind for r in records} == {"ok"}
    assert sum(1 for r in records if started(result, r) > term_at) >= 80
    assert app.proc.poll() is None
    assert (await asyncio.to_thread(http_get, app.port, "/readyz"))[0] == 200
    # teardown SIGKILLs it


async def test_hang_accepts_tcp_but_never_answers(probe_apps: ProbeApps) -> None:
    app = probe_apps.start(ready=False, HANG="1")
    app.wait_listening()  # TCP connect succeeding is the only readiness signal a hung app gives
    records, _ = await collect(LoadSpec(url=app.url, rate=20.0, duration=0.5, connect_timeout=1.0, read_timeout=0.3))
    assert len(records) == 10
    assert {r.kind for r in records} == {"read_timeout"}


@pytest.mark.parametrize("mode", [ConnMode.NEW, ConnMode.KEEPALIVE])
async def test_pod_and_version_headers_are_recorded(probe_apps: ProbeApps, mode: ConnMode) -> None:
    app = probe_apps.start(POD_NAME="web-7f9c-abcde", VERSION="v7")
    records, _ = await collect(LoadSpec(url=app.url, rate=50.0, duration=0.5, mode=mode))
    assert len(records) == 25
    assert {(r.kind, r.status, r.pod, r.version) for r in records} == {("ok", 200, "web-7f9c-abcde", "v7")}


def test_cli_load_measures_a_kill_and_restart(probe_apps: ProbeApps, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = probe_apps.start(POD_NAME="first")
    out = tmp_path / "run.json"
    errors: list[BaseException] = []

    def kill_and_restart() -> None:
        try:
            time.sleep(1.0)
            app.proc.kill()
            app.proc.wait(timeout=5)
            time.sleep(0.3)
            probe_apps.start(port=app.port, ready=False, POD_NAME="second")
        except BaseException as e:  # surfaced in the test thread below
            errors.append(e)

    chaos = threading.Thread(target=kill_and_restart, name="kill-and-restart")
    chaos.start()
    try:
        rc = main(
            [
                "-q",
                "load",
                app.url,
                "--rate",
                "100",
                "--duration",
                "5s",
                "--connect-timeout",
                "500ms",
                "--read-timeout",
                "1s",
                "--out",
                str(out),
                "--timeline",
            ]
        )
    finally:
        chaos.join(timeout=10)
    assert not errors, errors
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "longest failure streak ms" in stdout and re.search(r"\|\s+second\s+\|\s+ok\s+\|\s+refused", stdout), stdout

    doc = json.loads(out.read_text())
    assert doc["schema"] == "rollout-harness/load@1"
    s = doc["summary"]
    assert s["requests"] == 500
    assert s["by_kind"].get("refused", 0) >= 20, s["by_kind"]
    assert s["failed"] == sum(s["by_kind"].values())
    assert s["longest_outage_ms"] > 300  # killed for 0.3 s plus the restarted app's start-up
    assert 0.8 < s["outage_start_s"] < 1.5
    outage_end = s["outage_start_s"] + s["longest_outage_ms"] / 1000
    after = [row for row in s["timeline"] if row["t"] > outage_end]
    assert after and all(row.get("ok", 0) > 0 for row in after)
    assert all(row.get("ok", 0) == 100 for row in after if row["t"] > outage_end + 1), s["timeline"]
