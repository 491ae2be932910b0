"""Known answers for modes h2 and grpc from the real probe app: a real process serving HTTP/2 (h2c) and gRPC on
loopback, real signals, the real load generator. A pod that exits at SIGTERM loses the streams in flight (the
connection goes under them); one that drains (GOAWAY, then the streams in flight served to their end) loses none
until its listener closes, and none at all behind a forwarder that sends new connections elsewhere (a Service); a
maximum connection age makes the client reconnect and costs nothing.

Times are compared on CLOCK_MONOTONIC: a record started at result.t0_mono + record.start."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import grpc.aio
import pytest
import yarl
from support import Forwarder, ProbeApps, collect, free_port

from harness.classify import describe
from harness.grpcclient import METHOD, OPTIONS, failure
from harness.h2client import H2Pool
from harness.load import LoadResult, LoadSpec, run_load
from harness.loadworker import LoadProcess
from harness.model import ConnMode
from harness.records import RequestRecord, read_records
from probe_app.local import LocalApp

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MODES = [ConnMode.H2, ConnMode.GRPC]
LOST_IN_FLIGHT = {ConnMode.H2: {"conn_lost"}, ConnMode.GRPC: {"grpc_unavailable"}}
UNSENT = {ConnMode.H2: set(), ConnMode.GRPC: {("grpc_unavailable", "GrpcError:UNAVAILABLE:GOAWAY")}}
"""What the client may lose at a GOAWAY without the server refusing anything: the calls grpcio cancels unsent."""
REFUSED = {
    ConnMode.H2: {("refused", "ConnectError:ECONNREFUSED")},
    ConnMode.GRPC: {("grpc_unavailable", "GrpcError:UNAVAILABLE:ECONNREFUSED")},
}


def start(probe_apps: ProbeApps, **env: str) -> LocalApp:
    # port, ready and timeout given by position, so that **env can only fill start()'s **env
    return probe_apps.start(None, True, 10.0, **{"H2_PORT": str(free_port()), "GRPC_PORT": str(free_port()), **env})


def url(app: LocalApp, mode: ConnMode) -> str:
    return app.h2_url if mode is ConnMode.H2 else app.grpc_url


async def load_with_sigterm(app: LocalApp, spec: LoadSpec, after: float) -> tuple[list[RequestRecord], LoadResult, float]:
    """Run load; `after` seconds in, SIGTERM the app. Records (by seq), result, and the signal's time after t0."""
    records: list[RequestRecord] = []
    load = asyncio.create_task(run_load(spec, records.append))
    await asyncio.sleep(after)
    sent_at = time.monotonic()
    app.proc.send_signal(signal.SIGTERM)
    result = await load
    return sorted(records, key=lambda r: r.seq), result, sent_at - result.t0_mono


@pytest.mark.parametrize("mode", MODES)
async def test_answers_name_pod_and_version(probe_apps: ProbeApps, mode: ConnMode) -> None:
    app = start(probe_apps, POD_NAME="web-7f9c-abcde", VERSION="v7")
    records, _ = await collect(LoadSpec(url=url(app, mode), rate=50.0, duration=0.5, mode=mode))
    assert len(records) == 25
    assert {(r.kind, r.status, r.pod, r.version) for r in records} == {("ok", 200, "web-7f9c-abcde", "v7")}


async def test_grpc_an_unknown_method_is_unimplemented(probe_apps: ProbeApps) -> None:
    """The probe app's gRPC server has one method; gRPC's client gets UNIMPLEMENTED for any other."""
    app = start(probe_apps)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{yarl.URL(app.grpc_url).port}", options=OPTIONS) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary("/probe.Probe/Put")
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await call(b"", timeout=2.0)
    assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("mode", MODES)
async def test_an_exit_at_sigterm_loses_the_streams_in_flight(probe_apps: ProbeApps, mode: ConnMode) -> None:
    """Each answer takes 0.2 s, so at 100/s about 20 requests are in flight when the process exits: every one is
    lost with its connection (h2: conn_lost; gRPC: UNAVAILABLE), every later one is refused."""
    app = start(probe_apps, SHUTDOWN="immediate", DELAY="0.2")
    spec = LoadSpec(url=url(app, mode), rate=100.0, duration=2.0, mode=mode, connect_timeout=0.5, read_timeout=1.0)
    records, _, term = await load_with_sigterm(app, spec, after=0.7)
    assert await asyncio.to_thread(app.proc.wait, 10) == 0
    done_before = [r for r in records if r.start < term - 0.25]
    in_flight = [r for r in records if term - 0.15 <= r.start < term]
    late = [r for r in records if r.start > term + 0.3]
    assert len(done_before) >= 30 and {r.kind for r in done_before} == {"ok"}
    assert len(in_flight) >= 10 and {r.kind for r in in_flight} == LOST_IN_FLIGHT[mode], {r.detail for r in in_flight}
    assert all(r.end < term + 0.1 for r in in_flight)  # lost at the exit, not at a timeout
    assert len(late) >= 50 and {(r.kind, r.detail) for r in late} == REFUSED[mode]


@pytest.mark.parametrize("mode", MODES)
async def test_a_graceful_drain_serves_every_stream_until_the_listener_closes(probe_apps: ProbeApps, mode: ConnMode) -> None:
    """SIGTERM with SHUTDOWN=graceful: h2 sends GOAWAY (2^31-1, then the last stream id) on every connection and
    serves the streams in flight; gRPC serves on, then stops with GOAWAY and its grace. Each answer takes 0.5 s:
    nothing that started before the listener closed (0.3 s of margin for the request to arrive) is lost, those in
    flight when it closed included; what comes after the exit is refused."""
    drain = 1.0
    app = start(probe_apps, SHUTDOWN="graceful", DRAIN_SECONDS=str(drain), DELAY="0.5")
    spec = LoadSpec(url=url(app, mode), rate=100.0, duration=3.0, mode=mode, connect_timeout=0.5, read_timeout=2.0)
    records, _, term = await load_with_sigterm(app, spec, after=0.8)
    assert await asyncio.to_thread(app.proc.wait, 10) == 0
    closed = term + drain  # the listener closes no earlier than this
    before_close = [r for r in records if r.start < closed - 0.3]
    across_term = [r for r in before_close if r.start < term < r.end]
    across_close = [r for r in before_close if r.end > closed]
    assert {r.kind for r in before_close} == {"ok"}, sorted({(r.kind, r.detail) for r in before_close if r.kind != "ok"})
    assert len(across_term) >= 20 and len(across_close) >= 10  # in flight at the signal, and when the listener closed
    after_exit = [r for r in records if r.start > closed + 0.8]
    assert after_exit and {(r.kind, r.detail) for r in after_exit} == REFUSED[mode]


@pytest.mark.parametrize("drain_close", ["1", "0"])
@pytest.mark.parametrize("mode", MODES)
async def test_a_graceful_drain_behind_a_service_loses_no_call(
    probe_apps: ProbeApps, forwarder: Callable[[int], Forwarder], mode: ConnMode, drain_close: str
) -> None:
    """Two apps behind a forwarder, as two pods behind a Service: new connections go to the first until SIGTERM, then
    (as kube-proxy once the endpoint is gone) to the second. The first drains for 1 s and closes each connection with
    GOAWAY(2^31-1), a second later GOAWAY(the last stream), then the close: at SIGTERM (DRAIN_CLOSE=1) or when the
    drain ends (0, while calls still flow on it). Each answer takes 0.2 s, so calls are in flight at every step.

    The client (no retry policy) moves to the second app and loses no call. grpcio's server stopped with one GOAWAY
    and refused calls at the same moment: this test failed 12 runs of 12 against it, 1 to 3 calls CANCELLED in each.
    A grpcio client with transparent retry off cancels, unsent, a call it starts after it read a GOAWAY and before its
    channel moves on (UNAVAILABLE naming the GOAWAY): a race of the client's, about 0.6 % of GOAWAYs on a loaded
    machine; the harness's client keeps transparent retry on (harness.grpcclient), which resends such a call."""
    old = start(probe_apps, SHUTDOWN="graceful", DRAIN_SECONDS="1", DRAIN_CLOSE=drain_close, DELAY="0.2", POD_NAME="old")
    new = start(probe_apps, DELAY="0.2", POD_NAME="new")
    fwd = forwarder(int(yarl.URL(url(old, mode)).port or 0))
    spec = LoadSpec(url=fwd.url, rate=300.0, duration=3.5, mode=mode, connect_timeout=1.0, read_timeout=3.0)
    records: list[RequestRecord] = []
    load = asyncio.create_task(run_load(spec, records.append))
    await asyncio.sleep(1.0)
    fwd.backend = int(yarl.URL(url(new, mode)).port or 0)
    sent_at = time.monotonic()
    old.proc.send_signal(signal.SIGTERM)
    result = await load
    term = sent_at - result.t0_mono
    assert await asyncio.to_thread(old.proc.wait, 10) == 0
    lost = [(r.kind, r.detail) for r in records if r.kind != "ok"]
    assert set(lost) <= UNSENT[mode] and len(lost) <= spec.mux_connections, lost
    served_by_old = [r for r in records if r.pod == "old"]
    assert len([r for r in served_by_old if r.start < term < r.end]) >= 20  # in flight at the signal
    if drain_close == "0":
        assert max(r.start for r in served_by_old) > term + 0.9  # it closed while calls still came on it
    assert len([r for r in records if r.pod == "new"]) >= 400


async def test_h2_max_connection_age_makes_the_client_reconnect(probe_apps: ProbeApps) -> None:
    """MAX_CONN_AGE=0.4: each connection is sent GOAWAY 0.4 s after it opened and closed once its streams ended;
    the client opens new ones and no request is lost."""
    app = start(probe_apps, MAX_CONN_AGE="0.4")
    u = yarl.URL(app.h2_url)
    pool = H2Pool(1, 0.5, 1.0, u.raw_authority, "/")
    answers = []
    try:
        for seq in range(200):  # about 2 s
            answers.append((await pool.get("127.0.0.1", u.port or 80, seq)).status)
            await asyncio.sleep(0.01)
    finally:
        await pool.aclose()
    assert answers == [200] * 200 and pool.opened >= 4, pool.opened
    records, _ = await collect(LoadSpec(url=app.h2_url, rate=200.0, duration=1.5, mode=ConnMode.H2, read_timeout=1.0))
    assert {r.kind for r in records} == {"ok"}


async def test_grpc_max_connection_age_makes_the_client_reconnect(probe_apps: ProbeApps) -> None:
    """The same through gRPC: the answers name the client's address, one per connection. The client's own race with
    a GOAWAY (grpcio fails, unsent, a call it starts after it read the GOAWAY and before its channel moves on:
    UNAVAILABLE naming the GOAWAY) is resent by gRPC's transparent retry, which the harness's client keeps on: on
    loopback with connections aged 20-50 ms, 13 such calls in 5 runs of 4,000 with it off, none in 5 with it on
    (2026-12-04). The allowance below covers the race, not a server's refusal."""
    app = start(probe_apps, MAX_CONN_AGE="0.4")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{yarl.URL(app.grpc_url).port}", options=OPTIONS)
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(METHOD)
    peers, raced = set(), []
    try:
        for _ in range(200):
            try:
                body: bytes = await call(b"", timeout=1.0)
                peers.add(body.decode().split("\n")[2])
            except grpc.aio.AioRpcError as e:
                raced.append(describe(failure(e)))
            await asyncio.sleep(0.01)
    finally:
        await channel.close()
    assert len(peers) >= 3, peers
    assert set(raced) <= {"GrpcError:UNAVAILABLE:GOAWAY"} and len(raced) <= 3, raced
    records, _ = await collect(LoadSpec(url=app.grpc_url, rate=200.0, duration=1.5, mode=ConnMode.GRPC, read_timeout=1.0))
    failed = [r for r in records if r.kind != "ok"]
    assert {(r.kind, r.detail) for r in failed} <= {("grpc_unavailable", "GrpcError:UNAVAILABLE:GOAWAY")}
    assert len(failed) <= 3, len(failed)


@pytest.mark.parametrize("mode", MODES)
async def test_the_load_process_runs_the_mode(probe_apps: ProbeApps, mode: ConnMode, tmp_path: Path) -> None:
    """The generator as run and compare drive it (harness.loadworker: its own process, the spec as JSON, records as
    JSONL) speaks the mode over the connections it is given."""
    app = start(probe_apps, POD_NAME="web-1")
    spec = LoadSpec(url=url(app, mode), rate=100.0, duration=0.5, mode=mode, mux_connections=3)
    proc = LoadProcess(spec, tmp_path / "records.jsonl")
    try:
        await proc.start()
        result = await proc.finish(stop=False)
    finally:
        proc.kill()
    records = list(read_records(tmp_path / "records.jsonl"))
    assert result.sent == len(records) == 50 and {(r.kind, r.pod) for r in records} == {("ok", "web-1")}
