"""Every failure kind of modes h2 and grpc from a real condition on a loopback socket, through the real load
generator, and the classification of the exception types the clients raise.

The h2 cases run raw HTTP/2 servers (the h2 state machine on a blocking socket, in a thread): each answers, resets,
refuses with GOAWAY or drops the connection as the test asks. The gRPC cases use a closed port, a server that never
speaks HTTP/2, and an in-process grpcio server whose method fails with a status."""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Callable

import grpc
import grpc.aio
import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest
from support import RawServer, collect, free_port, hold

from harness.classify import LOST, TIMER_KINDS, FailureKind, classify_exception, describe, grpc_cause
from harness.grpcclient import METHOD, failure
from harness.h2client import _GoawayFilter
from harness.load import LoadSpec
from harness.model import ConnMode
from harness.mux import ConnectionLost, GoawayRefused, GrpcError, StreamReset
from probe_app.h2app import goaway_frame

# --- the h2 client against raw HTTP/2 servers -------------------------------------------------------------------

OnRequest = Callable[[h2.connection.H2Connection, int, socket.socket], str]
"""What a raw server does with a request's stream: "" to go on, "close" (FIN) or "rst" (RST) to end the connection."""


def h2_server(on_request: OnRequest) -> Callable[[socket.socket], bool]:
    def handle(sock: socket.socket) -> bool:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return False
            end = ""
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    end = on_request(conn, ev.stream_id, sock) or end
            sock.sendall(conn.data_to_send())
            if end == "rst":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif end == "close":
                _fin(sock)
            if end:
                return False
        return False

    return handle


def _fin(sock: socket.socket) -> None:
    """End the connection with a FIN the client sees as such: a close() with the client's late frames (a SETTINGS
    ACK, a WINDOW_UPDATE) unread in the receive buffer would send an RST instead (seen as ECONNRESET under load)."""
    sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def answer(status: int) -> OnRequest:
    def on(conn: h2.connection.H2Connection, sid: int, _: socket.socket) -> str:
        conn.send_headers(sid, [(b":status", str(status).encode()), (b"x-pod", b"web-1"), (b"x-version", b"v2")])
        conn.send_data(sid, b"hi", end_stream=True)
        return ""

    return on


def reset(code: h2.errors.ErrorCodes) -> OnRequest:
    def on(conn: h2.connection.H2Connection, sid: int, _: socket.socket) -> str:
        conn.reset_stream(sid, code)
        return ""

    return on


def goaway_refusing(conn: h2.connection.H2Connection, sid: int, sock: socket.socket) -> str:
    """GOAWAY with last stream id 0 (nothing processed), written past h2 as the probe app does, then FIN."""
    sock.sendall(conn.data_to_send() + goaway_frame(0))
    return "close"


def h2_spec(url: str, n: int = 6, read_timeout: float = 0.5) -> LoadSpec:
    return LoadSpec(
        url=url, rate=20.0, duration=n / 20.0, mode=ConnMode.H2, mux_connections=1, connect_timeout=0.5, read_timeout=read_timeout
    )


@pytest.mark.integration
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("on_request", "kind", "detail", "conns"),
    [
        (answer(200), "ok", "", 1),
        (answer(503), "http_5xx", "HTTP 503", 1),
        (reset(h2.errors.ErrorCodes.INTERNAL_ERROR), "stream_reset", "StreamReset:INTERNAL_ERROR", 1),
        (reset(h2.errors.ErrorCodes.REFUSED_STREAM), "stream_reset", "StreamReset:REFUSED_STREAM", 1),
        (goaway_refusing, "goaway", "GoawayRefused:NO_ERROR", 6),
        (lambda c, s, k: "close", "conn_lost", "ConnectionLost", 6),
        (lambda c, s, k: "rst", "conn_lost", "ConnectionLost:ECONNRESET", 6),
    ],
    ids=["ok", "503", "rst-internal", "rst-refused", "goaway", "fin", "rst"],
)
async def test_h2_failure_kinds(raw_server: Callable[..., RawServer], on_request: OnRequest, kind: str, detail: str, conns: int) -> None:
    """One connection carries every stream while the server keeps it; a connection the server closed or sent GOAWAY on
    is replaced by a new one for the next request."""
    server = raw_server(h2_server(on_request))
    records, _ = await collect(h2_spec(server.url))
    assert len(records) == 6 and {(r.kind, r.detail) for r in records} == {(kind, detail)}
    assert server.accepted == conns
    if kind == "ok":
        assert {(r.status, r.pod, r.version) for r in records} == {(200, "web-1", "v2")}


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_h2_transport_failures_are_named_as_in_http1(raw_server: Callable[..., RawServer]) -> None:
    records, _ = await collect(h2_spec(f"http://127.0.0.1:{free_port()}/"))
    assert {(r.kind, r.detail) for r in records} == {("refused", "ConnectError:ECONNREFUSED")}
    records, _ = await collect(h2_spec(raw_server(hold).url, read_timeout=0.3))  # TCP, but no HTTP/2 answer
    assert {r.kind for r in records} == {"read_timeout"} and all(0.25 <= r.latency < 1.0 for r in records)


# --- the gRPC client --------------------------------------------------------------------------------------------


def grpc_spec(url: str, n: int = 4, read_timeout: float = 0.5) -> LoadSpec:
    return LoadSpec(url=url, rate=20.0, duration=n / 20.0, mode=ConnMode.GRPC, mux_connections=1, read_timeout=read_timeout)


@pytest.mark.integration
@pytest.mark.timeout(30)
async def test_grpc_statuses_are_failure_kinds(raw_server: Callable[..., RawServer]) -> None:
    """A closed port: UNAVAILABLE naming the refusal; a server that accepts TCP but never speaks HTTP/2: the call's
    deadline (the read timeout) passes, DEADLINE_EXCEEDED; a method that fails: its status, grpc_other."""
    records, _ = await collect(grpc_spec(f"http://127.0.0.1:{free_port()}/"))
    assert {(r.kind, r.detail) for r in records} == {("grpc_unavailable", "GrpcError:UNAVAILABLE:ECONNREFUSED")}
    records, _ = await collect(grpc_spec(raw_server(hold).url, read_timeout=0.3))
    assert {(r.kind, r.detail) for r in records} == {("grpc_deadline", "GrpcError:DEADLINE_EXCEEDED")}
    assert all(0.25 <= r.latency < 1.0 for r in records)

    async def fail(_: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.INTERNAL, "boom")
        return b""

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler("probe.Probe", {"Get": grpc.unary_unary_rpc_method_handler(fail)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        records, _ = await collect(grpc_spec(f"http://127.0.0.1:{port}/"))
    finally:
        await server.stop(None)
    assert {(r.kind, r.detail) for r in records} == {("grpc_other", "GrpcError:INTERNAL")}
    assert METHOD == "/probe.Probe/Get"


# --- classification of the clients' exception types -------------------------------------------------------------


def test_stream_kinds_are_lost_named_and_no_timer_kinds_but_the_deadline() -> None:
    new = [FailureKind.STREAM_RESET, FailureKind.GOAWAY, FailureKind.CONN_LOST, FailureKind.GRPC_UNAVAILABLE, FailureKind.GRPC_OTHER]
    assert all(k.value in LOST and k not in TIMER_KINDS for k in new)
    assert FailureKind.GRPC_DEADLINE.value in LOST and FailureKind.GRPC_DEADLINE in TIMER_KINDS


def test_classify_the_clients_exceptions() -> None:
    lost = ConnectionLost("closed")
    lost.__cause__ = ConnectionResetError(errno.ECONNRESET, "reset by peer")
    assert classify_exception(lost) is FailureKind.CONN_LOST  # not reset: a stream was open on it
    assert describe(lost) == "ConnectionLost:ECONNRESET"
    assert (classify_exception(ConnectionLost("eof")), describe(ConnectionLost("eof"))) == (FailureKind.CONN_LOST, "ConnectionLost")
    assert classify_exception(StreamReset("CANCEL")) is FailureKind.STREAM_RESET
    assert describe(StreamReset("0x1f")) == "StreamReset:0x1f"
    assert classify_exception(GoawayRefused("NO_ERROR", 7)) is FailureKind.GOAWAY
    assert describe(GoawayRefused("ENHANCE_YOUR_CALM", 7)) == "GoawayRefused:ENHANCE_YOUR_CALM"


@pytest.mark.parametrize(
    ("code", "details", "kind", "detail"),
    [
        (
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: Failed to connect to remote host: "
            "Connection refused",
            FailureKind.GRPC_UNAVAILABLE,
            "GrpcError:UNAVAILABLE:ECONNREFUSED",
        ),
        (grpc.StatusCode.UNAVAILABLE, "Socket closed", FailureKind.GRPC_UNAVAILABLE, "GrpcError:UNAVAILABLE:closed"),
        (grpc.StatusCode.UNAVAILABLE, "recvmsg:Connection reset by peer", FailureKind.GRPC_UNAVAILABLE, "GrpcError:UNAVAILABLE:ECONNRESET"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", FailureKind.GRPC_DEADLINE, "GrpcError:DEADLINE_EXCEEDED"),
        (grpc.StatusCode.CANCELLED, "Received RST_STREAM with error code 8", FailureKind.GRPC_OTHER, "GrpcError:CANCELLED"),
    ],
    ids=["refused", "closed", "reset", "deadline", "cancelled"],
)
def test_classify_grpc_statuses(code: grpc.StatusCode, details: str, kind: FailureKind, detail: str) -> None:
    """grpcio's AioRpcError, as the channel raises it, through the client's conversion."""
    exc = failure(grpc.aio.AioRpcError(code, None, None, details))
    assert isinstance(exc, GrpcError) and classify_exception(exc) is kind and describe(exc) == detail


def test_grpc_cause_reads_the_first_known_words() -> None:
    assert grpc_cause("GOAWAY received; Error code: 0") == "GOAWAY"
    assert grpc_cause("Broken pipe") == "EPIPE"
    assert grpc_cause("something new") == ""


def test_the_goaway_filter_takes_goaway_frames_out_whatever_the_split() -> None:
    """Server bytes (SETTINGS, HEADERS, DATA from h2) with two GOAWAY frames among them, fed in every split in two
    and byte by byte: h2 gets every other frame intact, and each GOAWAY is read once."""
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/")], end_stream=True)
    server.receive_data(client.data_to_send())
    settings = server.data_to_send()
    server.send_headers(1, [(b":status", b"200")])
    server.send_data(1, b"x" * 100, end_stream=True)
    answer = server.data_to_send()
    wire = settings + goaway_frame(2**31 - 1) + answer + goaway_frame(1, 2)
    want = (settings + answer, [(2**31 - 1, 0), (1, 2)])
    for cut in range(len(wire) + 1):
        f = _GoawayFilter()
        a, b = f.feed(wire[:cut]), f.feed(wire[cut:])
        assert (a[0] + b[0], a[1] + b[1]) == want, cut
    f = _GoawayFilter()
    pieces = [f.feed(wire[i : i + 1]) for i in range(len(wire))]
    assert (b"".join(p[0] for p in pieces), [g for p in pieces for g in p[1]]) == want
