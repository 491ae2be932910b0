"""HTTP/1.1 on the wire for harness.httpclient: the failures it reports, the response it returns, and the asyncio
Protocol that writes one request and parses one response at a time on a connection (status line, the headers the
records keep, the body framed by Content-Length, chunked or close). What it reports on which close: httpclient."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

MAX_HEAD = 65536


class ConnectTimeout(TimeoutError):
    """The TCP handshake did not complete within the connect timeout."""


class ConnectError(OSError):
    """connect() failed; errno says why (ECONNREFUSED, EHOSTUNREACH, ...)."""


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response ended."""


class IdleClosed(ServerDisconnected):
    """The server closed a reused keep-alive connection (FIN or RST: the cause, if any) before any byte of the
    response: it gave the connection up as idle while this request was on its way. Nothing says whether the
    server saw the request; clients that retry do so only for idempotent ones (see classify.FailureKind)."""


class BadResponse(Exception):
    """The bytes the server sent are not an HTTP/1.x response this client can read."""


P = TypeVar("P", bound=asyncio.Protocol)


async def connect(protocol: Callable[[], P], host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> P:
    """A TCP connection (TLS with `tls`) driven by a new `protocol`: ConnectTimeout after `timeout` seconds, ConnectError
    with the errno when connect() fails (HTTP/1.1 and HTTP/2 alike)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(protocol, host, port, ssl=tls)
    except TimeoutError:
        raise ConnectTimeout(f"no TCP handshake with {host}:{port} within {timeout:g}s") from None
    except OSError as e:
        if e.errno is None:
            raise
        raise ConnectError(e.errno, f"connect to {host}:{port}: {e.strerror}") from None
    return conn


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    pod: str
    version: str


class Conn(asyncio.Protocol):
    """One TCP connection; at most one request at a time on it."""

    __slots__ = (
        *("answered", "buf", "chunked", "closed", "head", "keep", "left", "pod", "reused", "sent", "status", "transport"),
        *("until_close", "version", "waiter"),
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.sent = 0  # requests written on this connection
        self.reused = False  # the current request is not the connection's first
        self.answered = False  # a byte of the current request's response has arrived
        self._reset_parser()

    def _reset_parser(self) -> None:
        self.head = False
        self.status = 0
        self.keep = True
        self.pod = ""
        self.version = ""
        self.left = 0  # body bytes still expected (Content-Length, or the current chunk's rest)
        self.chunked = False
        self.until_close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream connection's transport

    def send(self, request: bytes, waiter: asyncio.Future[Response]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.buf.clear()
        self._reset_parser()
        self.reused, self.answered = self.sent > 0, False
        self.sent += 1
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes while idle: nothing asked for them, the connection is unusable
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            return
        self.answered = True
        self.buf += data
        try:
            self._parse()
        except BadResponse as e:
            self._fail(e)
            if self.transport is not None:
                self.transport.abort()

    def _parse(self) -> None:
        buf = self.buf
        while not self.head:  # interim (1xx) heads first, each dropped whole; bounded by the bytes in buf
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadResponse("response head over 64 KiB")
                return
            self._read_head(bytes(buf[:end]))
            del buf[: end + 4]
            if 100 <= self.status < 200:
                self._reset_parser()  # the final response follows on the same connection
            else:
                self.head = True
        if self.until_close:
            buf.clear()
            return
        if self.chunked:
            self._parse_chunks()
            return
        take = min(self.left, len(buf))
        del buf[:take]
        self.left -= take
        if self.left == 0:
            self._done()

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise BadResponse(f"bad status line {lines[0][:60]!r}")
        self.status = int(parts[1])
        if self.status == 101:
            raise BadResponse("101 Switching Protocols to a request that asked for no upgrade")
        http10 = parts[0] == b"HTTP/1.0"
        length: int | None = None
        connection = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise BadResponse(f"bad Content-Length {value.strip()[:30]!r}") from None
            elif name == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif name == b"connection":
                connection = value.strip().lower()
            elif name == b"x-pod":
                self.pod = value.strip().decode("latin-1")
            elif name == b"x-version":
                self.version = value.strip().decode("latin-1")
        self.keep = connection == b"keep-alive" if http10 else connection != b"close"
        if self.status in (204, 304) or 100 <= self.status < 200:
            self.left = 0
        elif self.chunked:
            self.left = -1  # no chunk yet
        elif length is not None:
            self.left = length
        else:
            self.until_close = True
            self.keep = False

    def _parse_chunks(self) -> None:
        buf = self.buf
        while True:
            if self.left > 0:  # inside a chunk's data (+ its CRLF, counted in left)
                take = min(self.left, len(buf))
                del buf[:take]
                self.left -= take
                if self.left > 0:
                    return
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise BadResponse("chunk size line over 64 KiB")
                return
            line = bytes(buf[:end])
            if self.left == -2:  # after the last chunk: trailer lines until an empty one
                del buf[: end + 2]
                if not line:
                    self._done()
                    return
                continue
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadResponse(f"bad chunk size {line[:30]!r}") from None
            del buf[: end + 2]
            self.left = size + 2 if size else -2

    def _done(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self.status, self.pod, self.version))

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if exc is None and self.head and self.until_close:
            self._done()  # a body delimited by the close
        elif self.reused and not self.answered:
            idle = IdleClosed("the server closed the reused connection before any byte of the response")
            idle.__cause__ = exc
            self._fail(idle)
        else:
            self._fail(exc if exc is not None else ServerDisconnected("the server closed the connection before the response ended"))
