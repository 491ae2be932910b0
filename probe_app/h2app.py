"""The probe app's HTTP/2 server: cleartext with prior knowledge (h2c) on H2_PORT, on asyncio and the h2 state
machine; the same paths as HTTP/1.1 (`/`, `/healthz`, `/readyz`) and headers (x-pod, x-version), plus x-conn (this
connection's number since the start).

GOAWAY, as RFC 9113 §6.8 asks of a graceful close: first with the last stream id 2^31-1 (no new streams, please),
then, a second later (GOAWAY_NOTICE: what Go's server waits), with the highest stream id received; streams up to it
are served to their end, later ones ignored, and the connection closes once none is open (or CLOSE_GRACE after the
notice, resetting what is left). A connection goes through that:
- at SIGTERM with SHUTDOWN=graceful and DRAIN_CLOSE=1, and, during the drain, each connection opened then, after its
  first answer (as HTTP/1.1 answers `Connection: close` then); after DRAIN_SECONDS the listener closes and every
  connection left goes through it too;
- MAX_CONN_AGE seconds after it opened (when set), so clients reconnect and kube-proxy spreads them anew.

h2 closes its whole connection when it sends or receives a GOAWAY (h2 issue 1181), so the GOAWAY frames are written
here, past h2, which keeps serving the open streams. A request is answered once it has ended (its END_STREAM), by
`H2Server.answer`; probe_app.grpcapp serves gRPC on GRPC_PORT through the same connections by overriding it.
Imported by probe_app.app only when H2_PORT or GRPC_PORT is set.
"""

from __future__ import annotations

import asyncio
import itertools
import json

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from probe_app.app import Config, State, log

GOAWAY_NOTICE = 1.0
"""Seconds between the first GOAWAY (2^31-1) and the second (the real last stream id)."""
CLOSE_GRACE = 10.0
"""Seconds after the first GOAWAY within which open streams must end; the connection is closed then."""
MAX_STREAMS = 1000
"""MAX_CONCURRENT_STREAMS advertised (Go's server: 250; gRPC's: unlimited; h2's default: 100)."""
NO_ERROR = 0


def goaway_frame(last_stream_id: int, code: int = NO_ERROR) -> bytes:
    """A GOAWAY frame (RFC 9113 §6.8): 8 bytes of payload on stream 0."""
    return (8).to_bytes(3) + b"\x07\x00" + (0).to_bytes(4) + last_stream_id.to_bytes(4) + code.to_bytes(4)


Headers = list[tuple[bytes, bytes]]
Answer = tuple[Headers, bytes | None, Headers | None]
"""An answer: its headers, its body (None: the headers end the stream) and its trailers (None: the body ends it)."""


class H2Server:
    """The listener and its connections; `answer` says what a request gets (probe_app.grpcapp overrides it)."""

    name = "HTTP/2 (h2c)"

    def __init__(self, cfg: Config, state: State, port: int | None = None) -> None:
        self.cfg = cfg
        self.state = state
        self.port = cfg.h2_port if port is None else port
        self.conns: set[ServerConn] = set()
        self.numbers = itertools.count(1)
        self.ids = itertools.count(1)
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: ServerConn(self), "0.0.0.0", self.port, reuse_address=True, backlog=1024)
        log(self.cfg, f"{self.name} on :{self.port}, max connection age {self.cfg.max_conn_age or 'none'}")

    def delayed(self, path: bytes) -> bool:
        """Whether the answer to `path` waits DELAY seconds (the app's answers do; its probes do not)."""
        return path not in (b"/readyz", b"/healthz")

    def answer(self, conn: ServerConn, path: bytes) -> Answer:
        """The paths of HTTP/1.1 (probe_app.app), with x-conn: the connection's number."""
        cfg, state = self.cfg, self.state
        status, body = 200, b""
        if path == b"/readyz":
            ready = state.ready()
            status, body = (200, b"ready") if ready else (503, b"draining" if state.draining else b"not ready")
        elif path == b"/healthz":
            body = b"ok"
        else:
            body = json.dumps({"pod": cfg.pod_name, "version": cfg.version, "id": next(self.ids)}).encode()
        headers = [
            (b":status", str(status).encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-pod", cfg.pod_name.encode()),
            (b"x-version", cfg.version.encode()),
            (b"x-conn", str(conn.number).encode()),
        ]
        return headers, body, None

    def drain(self) -> None:
        """SIGTERM, graceful: tell every open connection to go (connections opened from now on, after their first answer)."""
        if self.cfg.drain_close:
            for c in list(self.conns):
                c.go_away()

    async def stop(self) -> None:
        """End of the drain: close the listener, tell every connection left to go, wait for their streams to end."""
        if self.server is not None:
            self.server.close()
        for c in list(self.conns):
            c.go_away()
        async with asyncio.timeout(CLOSE_GRACE + GOAWAY_NOTICE + 1):
            while self.conns:
                await asyncio.sleep(0.05)


class ServerConn(asyncio.Protocol):
    """One client connection: h2 reads frames and writes answers; GOAWAY and the close are decided here."""

    def __init__(self, server: H2Server) -> None:
        self.srv = server
        self.number = next(server.numbers)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.transport: asyncio.Transport | None = None
        self.open: dict[int, bytes] = {}  # stream id: path, from the request's headers until its answer
        self.last: int | None = None  # the last stream id of the final GOAWAY, once sent
        self.going = False
        self.timers: list[asyncio.TimerHandle] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream connection's transport
        self.srv.conns.add(self)
        self.h2.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS}
        )
        self.h2.initiate_connection()
        self._flush()
        if self.srv.cfg.max_conn_age:
            self.timers.append(asyncio.get_running_loop().call_later(self.srv.cfg.max_conn_age, self.go_away))

    def go_away(self) -> None:
        """The graceful close: GOAWAY(2^31-1), GOAWAY_NOTICE later GOAWAY(last received), close when no stream is open."""
        if self.going or self.transport is None or self.transport.is_closing():
            return
        self.going = True
        self._flush()
        self.transport.write(goaway_frame(2**31 - 1))
        loop = asyncio.get_running_loop()
        self.timers.append(loop.call_later(GOAWAY_NOTICE, self._final_goaway))
        self.timers.append(loop.call_later(CLOSE_GRACE, self._abort))

    def _final_goaway(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.last = self.h2.highest_inbound_stream_id
        self._flush()
        self.transport.write(goaway_frame(self.last))
        self._close_if_done()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _close_if_done(self) -> None:
        if self.last is not None and not self.open and self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            self._abort()
            return
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                if self.last is not None and ev.stream_id > self.last:
                    continue  # after the final GOAWAY: ignored (RFC 9113 §6.8)
                self.open[ev.stream_id] = dict(ev.headers or ()).get(b":path", b"/")
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in self.open:  # the whole request is in
                if self.srv.cfg.delay and self.srv.delayed(self.open[ev.stream_id]):
                    asyncio.get_running_loop().call_later(self.srv.cfg.delay, self._answer, ev.stream_id)
                else:
                    self._answer(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.open.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.DataReceived):
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self._flush()
        self._close_if_done()

    def _answer(self, sid: int) -> None:
        if sid not in self.open or self.transport is None or self.transport.is_closing():
            return  # reset by the client meanwhile, or the connection is gone
        headers, body, trailers = self.srv.answer(self, self.open.pop(sid))
        try:
            self.h2.send_headers(sid, headers, end_stream=body is None)
            if body is not None:
                self.h2.send_data(sid, body, end_stream=trailers is None)
            if trailers is not None:
                self.h2.send_headers(sid, trailers, end_stream=True)
        except h2.exceptions.ProtocolError:  # the stream closed under the delay
            return
        self._flush()
        if self.srv.state.draining and self.srv.cfg.drain_close:
            self.go_away()  # a connection opened during the drain: told to go after its first answer
        self._close_if_done()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.srv.conns.discard(self)
        for t in self.timers:
            t.cancel()
