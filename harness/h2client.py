"""The generator's HTTP/2 client (mode h2): cleartext with prior knowledge (h2c, RFC 9113 §3.3), each scheduled GET
one stream on a few long-lived connections, on asyncio Protocols and the h2 state machine (python-hyper/h2, the
HTTP/2 stack httpx uses).

Why not httpx: its HTTP/2 connection (httpcore 1.0) fails every stream still open once a GOAWAY arrives, the ones
the server is finishing included, so a graceful drain would read as loss; and its pool resends a request refused
by a GOAWAY on a new connection, a retry the measurement must not make. Both come from h2 itself, whose connection
state machine closes on any GOAWAY (h2 issue 1181): this client therefore takes GOAWAY frames out of the bytes
before h2 reads them (`_GoawayFilter`) and keeps the connection open for the streams the server still serves.

Connections: `connections` slots, request i going to slot i mod n (as keep-alive pools do); a slot holds the
connections it opened, the newest one with room taking the request. A slot opens a connection when it has none that
may take a stream: none yet, the last closed, the server sent GOAWAY, or every one holds the server's
MAX_CONCURRENT_STREAMS (as Go's transport does). Requests that arrive while a slot connects wait for that one
connection (a failed connect fails each of them: `refused`, ...). `opened` counts the connections made.

What each request can end in (harness.classify names them):
- a response (END_STREAM): its `:status`, X-Pod and X-Version;
- StreamReset: RST_STREAM from the server, with its error code;
- GoawayRefused: a GOAWAY whose last stream id is below this stream's (never processed; not resent);
- ConnectionLost: the connection closed while the stream was open (FIN, RST with its errno, an HTTP/2 protocol
  error, or the server's close after a GOAWAY that covered the stream but before its response ended);
- ConnectTimeout, ConnectError: the TCP connect, as in HTTP/1.1 (harness.httpclient);
- TimeoutError: no END_STREAM within the read timeout from the request's write; the stream is reset (CANCEL).
"""

from __future__ import annotations

import asyncio
import contextlib

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from harness.http1 import Response, connect
from harness.mux import ConnectionLost, GoawayRefused, StreamReset

GOAWAY_TYPE = 0x7
FRAME_HEAD = 9


def code_name(code: int) -> str:
    """An HTTP/2 error code's name (RFC 9113 §7), or its number in hex."""
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


class _GoawayFilter:
    """Splits the server's bytes into frames (9-byte head: 24-bit length, type, flags, stream) and keeps back the
    GOAWAY frames, which h2 would answer by closing the connection to every stream."""

    __slots__ = ("goaway", "head", "left")

    def __init__(self) -> None:
        self.head = bytearray()  # a frame head being read
        self.left = 0  # payload bytes of the current (passed) frame still to come
        self.goaway: tuple[int, bytearray] | None = None  # a GOAWAY frame being read: its length, its payload so far

    def feed(self, data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
        """The bytes for h2, and each complete GOAWAY as (last stream id, error code)."""
        out = bytearray()
        goaways: list[tuple[int, int]] = []
        i, n = 0, len(data)
        while i < n:
            if self.left:
                take = min(self.left, n - i)
                out += data[i : i + take]
                i += take
                self.left -= take
            elif self.goaway is not None:
                length, payload = self.goaway
                take = min(length - len(payload), n - i)
                payload += data[i : i + take]
                i += take
                if len(payload) == length:
                    self.goaway = None
                    if length >= 8:
                        goaways.append((int.from_bytes(payload[0:4]) & 0x7FFFFFFF, int.from_bytes(payload[4:8])))
            else:
                take = min(FRAME_HEAD - len(self.head), n - i)
                self.head += data[i : i + take]
                i += take
                if len(self.head) < FRAME_HEAD:
                    break
                length = int.from_bytes(self.head[0:3])
                if self.head[3] == GOAWAY_TYPE:
                    self.goaway = (length, bytearray())
                    if length == 0:  # malformed: no last stream id; read as "nothing processed"
                        self.goaway = None
                        goaways.append((0, h2.errors.ErrorCodes.PROTOCOL_ERROR))
                else:
                    out += self.head
                    self.left = length
                self.head.clear()
        return bytes(out), goaways


class H2Conn(asyncio.Protocol):
    """One HTTP/2 connection (client side) and the streams open on it."""

    def __init__(self) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None, validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config)
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, asyncio.Future[Response]] = {}
        self.heads: dict[int, tuple[int, str, str]] = {}  # stream -> (status, pod, version) once its headers came
        self.goaway: tuple[str, int] | None = None  # (error code, last stream id) of the server's last GOAWAY
        self.closed = False
        self._filter = _GoawayFilter()

    def usable(self) -> bool:
        """It may take one more stream."""
        if self.closed or self.goaway is not None:
            return False
        return len(self.streams) < self.h2.remote_settings.max_concurrent_streams

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream connection's transport
        self.h2.initiate_connection()
        self._flush()

    def send(self, headers: list[tuple[bytes, bytes]], waiter: asyncio.Future[Response]) -> int:
        sid = self.h2.get_next_available_stream_id()
        self.h2.send_headers(sid, headers, end_stream=True)
        self.streams[sid] = waiter
        self._flush()
        return sid

    def cancel(self, sid: int) -> None:
        """Give up a stream (its read timeout): reset it, so the server may stop and the slot is free."""
        self.heads.pop(sid, None)
        if self.streams.pop(sid, None) is not None and not self.closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            self._flush()
        self._close_if_done()

    def data_received(self, data: bytes) -> None:
        passed, goaways = self._filter.feed(data)
        try:
            events = self.h2.receive_data(passed) if passed else []
        except h2.exceptions.ProtocolError as e:
            self._lose(ConnectionLost(f"HTTP/2 protocol error: {type(e).__name__}"))
            return
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                fields = dict(ev.headers or ())
                status = fields.get(b":status", b"0")
                self.heads[ev.stream_id] = (
                    int(status) if status.isdigit() else 0,
                    fields.get(b"x-pod", b"").decode("latin-1"),
                    fields.get(b"x-version", b"").decode("latin-1"),
                )
            elif isinstance(ev, h2.events.DataReceived):
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                head = self.heads.pop(ev.stream_id, (0, "", ""))
                self._settle(ev.stream_id, Response(*head), None)
            elif isinstance(ev, h2.events.StreamReset):
                self.heads.pop(ev.stream_id, None)
                self._settle(ev.stream_id, None, StreamReset(code_name(ev.error_code)))
        for last, code in goaways:
            self._on_goaway(last, code)
        self._flush()
        self._close_if_done()

    def _on_goaway(self, last: int, code: int) -> None:
        name = code_name(code)
        self.goaway = (name, last)
        for sid in [s for s in self.streams if s > last]:
            self.heads.pop(sid, None)
            self._settle(sid, None, GoawayRefused(name, last))

    def _settle(self, sid: int, resp: Response | None, exc: BaseException | None) -> None:
        waiter = self.streams.pop(sid, None)
        if waiter is None or waiter.done():
            return
        if exc is not None:
            waiter.set_exception(exc)
        else:
            assert resp is not None
            waiter.set_result(resp)

    def _close_if_done(self) -> None:
        """After a GOAWAY, close once the streams it covered have ended: the server will not take more."""
        if self.goaway is not None and not self.streams and not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _lose(self, exc: ConnectionLost) -> None:
        self.closed = True
        for sid in list(self.streams):
            self._settle(sid, None, exc)
        self.heads.clear()
        if self.transport is not None:
            self.transport.abort()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        lost = ConnectionLost("the connection closed while the stream was open")
        lost.__cause__ = exc
        self._lose(lost)


class H2Pool:
    """HTTP/2 connections to one or more addresses: `connections` slots per address (see the module's docstring)."""

    def __init__(self, connections: int, connect_timeout: float, read_timeout: float, authority: str, path: str) -> None:
        self.n = connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.headers = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":authority", authority.encode("latin-1")),
            (b":path", path.encode("latin-1")),
        ]
        self.opened = 0
        """Connections opened so far (TCP connects that succeeded)."""
        self._slots: dict[tuple[str, int, int], list[H2Conn]] = {}
        self._dialing: dict[tuple[str, int, int], asyncio.Future[H2Conn]] = {}

    async def _conn(self, key: tuple[str, int, int]) -> H2Conn:
        conns = self._slots.setdefault(key, [])
        if any(c.closed for c in conns):
            conns[:] = [c for c in conns if not c.closed]
        for c in reversed(conns):
            if c.usable():
                return c
        dialing = self._dialing.get(key)
        if dialing is None:
            dialing = asyncio.ensure_future(self._dial(key[0], key[1]))
            self._dialing[key] = dialing
            dialing.add_done_callback(lambda f: self._dialed(key, f))
        return await asyncio.shield(dialing)

    def _dialed(self, key: tuple[str, int, int], f: asyncio.Future[H2Conn]) -> None:
        self._dialing.pop(key, None)
        if not f.cancelled() and f.exception() is None:
            self._slots.setdefault(key, []).append(f.result())

    async def _dial(self, host: str, port: int) -> H2Conn:
        conn = await connect(H2Conn, host, port, self.connect_timeout)
        self.opened += 1
        return conn

    async def get(self, host: str, port: int, seq: int) -> Response:
        """One GET on slot seq mod connections."""
        key = (host, port, seq % self.n)
        conn = await self._conn(key)
        if not conn.usable():  # a new connection that closed, or took a GOAWAY, before this request: nothing was sent
            conn = await self._conn(key)
            if conn.goaway is not None:
                raise GoawayRefused(*conn.goaway)
            if not conn.usable():
                raise ConnectionLost("two new connections in a row closed before the stream was sent")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        timer = loop.call_at(loop.time() + self.read_timeout, _expire, waiter)
        sid = conn.send(self.headers, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            if sid in conn.streams:  # timed out or cancelled: no answer will be read
                conn.cancel(sid)

    async def aclose(self) -> None:
        for f in self._dialing.values():
            f.cancel()
        for conns in self._slots.values():
            for c in conns:
                c.closed = True
                if c.transport is not None:
                    c.transport.abort()
        self._slots.clear()


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no complete response within the read timeout"))
