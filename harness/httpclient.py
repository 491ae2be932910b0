"""The generator's HTTP/1.1 client: one GET per scheduled request on asyncio Protocols, nothing else.

Why not aiohttp (which this replaced): per request it spends about 370 µs of CPU at 4,000 req/s keep-alive
(1.9× vegeta's), and it silently resends an idempotent request after a reset unless a private switch is set. This
client does what the measurement needs and no more: connect (new connection per request, or reuse an idle one of
its pool), write the request, parse the status line, the headers the records keep (X-Pod, X-Version) and the body
(Content-Length, chunked, or until close), and report each failure as the exception the OS or the parser gave.

Interim responses (1xx: 103 Early Hints, a 100 Continue nobody asked for) are read and dropped, and the final
response that follows is the answer (RFC 9110 §15.2: a client must parse 1xx it did not expect). 101 is the
exception: it switches protocols, which a request without `Upgrade` never asked for, so it is a `BadResponse`
(classified `other`) and the connection is dropped.

A body ends at its Content-Length, at the chunked terminator (and trailers), or, with neither, when the server
closes the connection cleanly (FIN: complete, RFC 9112 §6.3). A close before a framed body ends (Content-Length
or chunked) fails as `ServerDisconnected`, and an RST fails with ECONNRESET, also for a close-delimited body: both
classified `reset`.

One scheduled request is one attempt: nothing is retried, and a pooled connection the server closed while it was
idle is dropped before reuse, never replaced mid-request. When the server closes a reused connection after the
request was written but before any byte of its response (its idle timeout fired as the request arrived), the
request fails as `IdleClosed` (classified `idle_close`); any other close before the response ends fails as
`ServerDisconnected` or the OS error (classified `reset`).

Timeouts (LoadSpec): `connect` bounds the TCP handshake (ConnectTimeout, classified `connect_timeout`); `read`
bounds the rest, from the request write to the response's last byte (TimeoutError, classified `read_timeout`).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.http1 import BadResponse, Conn, ConnectError, ConnectTimeout, IdleClosed, Response, ServerDisconnected, connect

__all__ = [
    "BadResponse",
    "ConnectError",
    "ConnectTimeout",
    "Endpoint",
    "IdleClosed",
    "Pool",
    "Response",
    "ServerDisconnected",
    "endpoint",
    "request_bytes",
]


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no complete response within the read timeout"))


class Pool:
    """Connections to one address: a new one per request (`keep=False`), or idle ones reused (last in, first out)."""

    def __init__(self, keep: bool, connect_timeout: float, read_timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.keep = keep
        self.tls = tls
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[tuple[str, int], list[Conn]] = {}
        self._open: set[Conn] = set()

    async def get(self, host: str, port: int, request: bytes) -> Response:
        """One GET: `request` is its bytes (see request_bytes)."""
        conn = None
        idle = self._idle.get((host, port)) if self.keep else None
        while idle:
            c = idle.pop()
            if not c.closed:
                conn = c
                break
        if conn is None:
            conn = await connect(Conn, host, port, self.connect_timeout, self.tls)
        self._open.add(conn)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        timer = loop.call_at(loop.time() + self.read_timeout, _expire, waiter)  # lighter than asyncio.timeout
        done = False
        try:
            conn.send(request, waiter)
            resp = await waiter
            done = True
            return resp
        finally:
            timer.cancel()
            if done and self.keep and conn.keep and not conn.closed:
                self._idle.setdefault((host, port), []).append(conn)
            else:
                conn.waiter = None
                self._open.discard(conn)
                if conn.transport is None:
                    pass
                elif done:
                    conn.transport.close()
                else:
                    conn.transport.abort()

    def close(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                self._open.add(c)
        for c in self._open:
            if c.transport is not None:
                c.transport.abort()
        self._idle.clear()
        self._open.clear()


def request_bytes(path: str, host_header: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: */*\r\n\r\n".encode("latin-1")


@dataclass(frozen=True)
class Endpoint:
    """Where an http:// or https:// URL sends a GET: `host` (lower case, an IPv6 address without its brackets), `port`
    (the scheme's, 80 or 443, when the URL gives none), `target` (the path and query as written, "/" when empty) and
    `authority` (the Host header: the URL's host[:port] as written, without any user:password@)."""

    host: str
    port: int
    target: str
    authority: str


def endpoint(url: str) -> Endpoint:
    """`url` split by urllib.parse; ValueError when it cannot be (an unclosed IPv6 bracket, a port that is no number
    or out of range)."""
    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    return Endpoint(u.hostname or "", port, (u.path or "/") + (f"?{u.query}" if u.query else ""), u.netloc.rpartition("@")[2])
