"""The generator's HTTP/1.1 client (harness.httpclient) through the real generator against raw servers on
127.0.0.1: every body framing a server may use, interim (1xx) responses, connection reuse and closing (a server
giving up an idle connection as it is reused included), and responses it cannot read."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from support import RawServer, collect, read_request, respond

from harness.classify import FailureKind, classify_exception, describe
from harness.errors import ClusterError
from harness.httpclient import Endpoint, IdleClosed, Pool, Response, endpoint, request_bytes
from harness.load import LoadSpec
from harness.model import ConnMode
from harness.serving import SERVING_STREAK, wait_serving

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def spec(url: str, n: int = 6, mode: ConnMode = ConnMode.NEW) -> LoadSpec:
    return LoadSpec(url=url, rate=20.0, duration=n / 20.0, connect_timeout=0.5, read_timeout=0.5, mode=mode, connections=1)


def answer(raw: bytes, close: bool = True) -> Callable[[socket.socket], bool]:
    """Read one request, send `raw` (in small pieces, so the parser sees partial data), close unless told not to."""

    def handle(conn: socket.socket) -> bool:
        read_request(conn)
        for i in range(0, len(raw), 7):
            conn.sendall(raw[i : i + 7])
        return not close

    return handle


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Pod: web-7\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"


@pytest.mark.parametrize(
    ("url", "expect"),
    [
        ("http://127.0.0.1:8080/", Endpoint("127.0.0.1", 8080, "/", "127.0.0.1:8080")),
        ("http://Web.Default.svc", Endpoint("web.default.svc", 80, "/", "Web.Default.svc")),
        ("https://example.test/a/b?x=1&y=%20#frag", Endpoint("example.test", 443, "/a/b?x=1&y=%20", "example.test")),
        ("http://user:pw@[::1]:9000/p", Endpoint("::1", 9000, "/p", "[::1]:9000")),
        ("http://:80/", Endpoint("", 80, "/", ":80")),
    ],
)
def test_endpoint_splits_a_url_as_the_request_needs_it(url: str, expect: Endpoint) -> None:
    assert endpoint(url) == expect


@pytest.mark.parametrize("url", ["http://[::1/", "http://h:port/", "http://h:70000/"])
def test_endpoint_refuses_what_cannot_be_split(url: str) -> None:
    with pytest.raises(ValueError):
        endpoint(url)


@pytest.mark.parametrize(
    ("raw", "kind", "pod"),
    [
        (CHUNKED, "ok", "web-7"),
        (b"HTTP/1.1 200 OK\r\nx-pod: web-1\r\nx-version: v2\r\n\r\nbody until the server closes", "ok", "web-1"),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", "ok", ""),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "ok", ""),
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "http_5xx", ""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "reset", ""),  # closed before the body ended
        (b"HTTP/1.0 200 OK\r\nX-Pod: web-3\r\n\r\nan HTTP/1.0 body until the close", "ok", "web-3"),
        (CHUNKED[: CHUNKED.index(b"abcd") + 2], "reset", ""),  # closed inside a chunk
        (CHUNKED[: CHUNKED.index(b"0\r\n")], "reset", ""),  # after a whole chunk, before the last-chunk line
        (CHUNKED[: CHUNKED.index(b"Trailer")], "reset", ""),  # after the last chunk, before the trailer section ends
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "other", ""),
        (b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n", "other", ""),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "other", ""),
    ],
    ids=[
        *("chunked", "until-close", "http10", "204", "503", "truncated", "http10-until-close"),
        *("chunked-cut-in-chunk", "chunked-cut-between-chunks", "chunked-cut-before-trailers"),
        *("not-http", "bad-length", "bad-chunk"),
    ],
)
async def test_body_framings(raw_server: Callable[..., RawServer], raw: bytes, kind: str, pod: str) -> None:
    """Each response sent in 7-byte pieces, then a FIN. A body with neither Content-Length nor chunked ends at that
    FIN and is complete (RFC 9112 §6.3); a chunked body the FIN cuts before its terminator is `reset`."""
    server = raw_server(answer(raw))
    records, _ = await collect(spec(server.url))
    assert server.accepted == len(records) == 6
    assert {(r.kind, r.pod) for r in records} == {(kind, pod)}, {r.detail for r in records}


async def test_a_close_delimited_body_ended_by_rst_is_reset(raw_server: Callable[..., RawServer]) -> None:
    """A body delimited by the close is complete only if the close is clean: an RST may have cut it."""

    def handle(conn: socket.socket) -> bool:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\npart of a body")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False

    records, _ = await collect(spec(raw_server(handle).url))
    assert {(r.kind, r.detail) for r in records} == {("reset", "ConnectionResetError:ECONNRESET")}


def keepalive_server(responses_per_conn: int, close_header: bool = False) -> Callable[[socket.socket], bool]:
    """Answer up to `responses_per_conn` requests on one connection, then close it (while the client holds it idle)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + (b"Connection: close\r\n" if close_header else b"") + b"\r\n"

    def handle(conn: socket.socket) -> bool:
        for _ in range(responses_per_conn):
            if not read_request(conn):
                break
            conn.sendall(head + b"ok")
        return False

    return handle


async def test_keepalive_reuses_one_connection(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(keepalive_server(100))
    records, _ = await collect(spec(server.url, n=10, mode=ConnMode.KEEPALIVE))
    assert {r.kind for r in records} == {"ok"} and server.accepted == 1


@pytest.mark.parametrize("close_header", [False, True], ids=["idle-close", "connection-close"])
async def test_keepalive_opens_a_new_connection_after_the_server_closed_one(
    raw_server: Callable[..., RawServer], close_header: bool
) -> None:
    """A server that closes a kept-alive connection between requests (its idle timeout, or `Connection: close`)
    costs nothing: the closed connection is dropped before reuse, never used for a request."""
    server = raw_server(keepalive_server(2, close_header))
    records, _ = await collect(spec(server.url, n=10, mode=ConnMode.KEEPALIVE))
    assert {r.kind for r in records} == {"ok"}, {r.detail for r in records}
    assert server.accepted == 5 if not close_header else server.accepted == 10


async def test_wait_serving_needs_a_streak_and_every_ready_pod(raw_server: Callable[..., RawServer]) -> None:
    """The gate before a measured window: SERVING_STREAK answers in a row on new connections, and an answer from
    every ready pod when answers name their pod; a Service that never answers 200, or never from one of the
    ready pods, fails with what it last saw."""
    ok = raw_server(respond(200, "OK"))
    await wait_serving(ok.url, 5.0, frozenset({"web-1"}))  # answers that name no pod: the streak alone
    assert ok.accepted == SERVING_STREAK
    one = raw_server(respond(200, "OK", {"X-Pod": "web-1"}))
    await wait_serving(one.url, 5.0, frozenset({"web-1"}))
    with pytest.raises(ClusterError, match=r"not done within 2s \(last seen: HTTP 200; not answered yet: web-2\)"):
        await wait_serving(one.url, 2.0, frozenset({"web-1", "web-2"}))
    bad = raw_server(respond(503, "Service Unavailable"))
    with pytest.raises(ClusterError, match=r"not done within 1s \(last seen: HTTP 503\)"):
        await wait_serving(bad.url, 1.0)


async def test_an_ingress_route_host_goes_in_every_request_and_the_gate(raw_server: Callable[..., RawServer]) -> None:
    """`--via ingress`: the generator and the serving gate send the cell's route host (LoadSpec.authority), not the
    URL's 127.0.0.1:port, since the controller routes on it."""
    heads: list[bytes] = []

    def handle(conn: socket.socket) -> bool:
        heads.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return False

    server = raw_server(handle)
    route = "rh-naive-set-image-0a1b2c.ingress.rollout-harness.test"
    records, _ = await collect(replace(spec(server.url), authority=route))
    await wait_serving(server.url, 5.0, authority=route)
    assert {r.kind for r in records} == {"ok"}
    assert len(heads) == len(records) + SERVING_STREAK
    assert {h.split(b"\r\n")[1] for h in heads} == {f"Host: {route}".encode()}


async def test_the_client_pod_runs_the_same_gate_as_a_module(raw_server: Callable[..., RawServer]) -> None:
    """`python3 -m harness.serving URL TIMEOUT PODS`, as the client pod runs it: exit 0 when the gate passes, else
    exit 1 with the gate's own line (the same code as on the host, no copy)."""
    import asyncio
    import sys

    one = raw_server(respond(200, "OK", {"X-Pod": "web-1"}))

    async def gate(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "harness.serving", *args, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode().strip()

    assert await gate(one.url, "5", "web-1") == (0, "")
    code, line = await gate(one.url, "1", "web-1,web-2")
    assert code == 1 and line.endswith("not done within 1s (last seen: HTTP 200; not answered yet: web-2)"), line


# --- asyncio.start_server on 127.0.0.1: servers that answer per request, in the test's own event loop ----------

Conversation = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(conversation: Conversation) -> AsyncIterator[tuple[str, list[int]]]:
    """Serve each accepted connection with `conversation` (bounded by a 5 s timeout); yield the URL and a list
    holding the number of accepted connections. On exit the server and every connection are closed, and every
    conversation has ended."""
    accepted = [0]
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted[0] += 1
        writers.append(writer)
        if (task := asyncio.current_task()) is not None:
            tasks.add(task)
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            async with asyncio.timeout(5):
                await conversation(reader, writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", accepted
    finally:
        server.close()
        for w in writers:
            w.close()  # a conversation still reading sees EOF and ends
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await server.wait_closed()


async def head_of_request(reader: asyncio.StreamReader) -> None:
    await reader.readuntil(b"\r\n\r\n")


def replying(*parts: bytes, pause: float = 0.0, requests: int = 1) -> Conversation:
    """Answer up to `requests` requests on one connection with `parts`, sleeping `pause` between parts."""

    async def conversation(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(requests):
            await head_of_request(reader)
            for i, part in enumerate(parts):
                if i and pause:
                    await asyncio.sleep(pause)
                writer.write(part)
                await writer.drain()

    return conversation


OK_WEB2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pod: web-2\r\n\r\nok"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nX-Pod: hint\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@pytest.mark.parametrize(
    ("parts", "pause", "kind", "status", "pod"),
    [
        ((EARLY_HINTS, OK_WEB2), 0.0, "ok", 200, "web-2"),
        ((EARLY_HINTS + OK_WEB2,), 0.0, "ok", 200, "web-2"),  # interim and final in one segment
        ((EARLY_HINTS, OK_WEB2), 0.05, "ok", 200, "web-2"),  # the final response in a later read
        ((CONTINUE, EARLY_HINTS, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), 0.02, "http_5xx", 503, ""),
        ((b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",), 0.0, "other", 0, ""),
        ((EARLY_HINTS,), 0.0, "reset", 0, ""),  # closed after the interim response: the request was answered, then cut
    ],
    ids=["103-then-200", "one-segment", "later-read", "100-103-503", "101-unasked", "103-then-close"],
)
async def test_interim_responses_are_skipped(parts: tuple[bytes, ...], pause: float, kind: str, status: int, pod: str) -> None:
    """1xx responses before the final one are read and dropped (RFC 9110 §15.2); the final one is the answer, with
    its own headers. An unasked 101 is a protocol error (`other`), not an answer."""
    async with serving(replying(*parts, pause=pause)) as (url, accepted):
        records, _ = await collect(spec(url, n=4))
    assert accepted[0] == len(records) == 4
    assert {(r.kind, r.status, r.pod) for r in records} == {(kind, status, pod)}, {r.detail for r in records}
    if kind == "other":
        assert {r.detail for r in records} == {"BadResponse"}


async def test_interim_responses_on_a_kept_alive_connection() -> None:
    """After an interim and a final response, the next request on the same connection parses from a clean state."""
    async with serving(replying(CONTINUE + EARLY_HINTS, OK_WEB2, pause=0.01, requests=100)) as (url, accepted):
        records, _ = await collect(spec(url, n=8, mode=ConnMode.KEEPALIVE))
    assert {(r.kind, r.pod) for r in records} == {("ok", "web-2")} and accepted[0] == 1


# --- a server closing an idle keep-alive connection as the client reuses it -----------------------------------------


def idle_timeout(idle: float, rst: bool) -> Conversation:
    """Answer one request, then give the connection up after `idle` s without looking at it, as a server whose
    idle timer fires just as the next request arrives: that request is never answered, and the close is a FIN
    (`rst=False`: the request read and dropped) or an RST (`rst=True`)."""

    async def conversation(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await head_of_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(idle)
        if rst:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            await head_of_request(reader)  # it had arrived: the close is a plain FIN

    return conversation


async def get_all(pool: Pool, url: str, n: int, gap: float) -> list[Response | BaseException]:
    u = endpoint(url)
    out: list[Response | BaseException] = []
    for _ in range(n):
        try:
            out.append(await pool.get(u.host, u.port, request_bytes("/", u.authority)))
        except Exception as exc:
            out.append(exc)
        await asyncio.sleep(gap)
    return out


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_a_reused_connection_closed_before_any_byte_is_idle_close(rst: bool) -> None:
    """The server gives up a kept-alive connection just as the client reuses it: that request fails as
    `idle_close` (the cause kept in the detail), not `reset`; the next request opens a new connection and
    succeeds. Nothing is retried: three requests, three attempts, one lost."""
    async with serving(idle_timeout(0.4, rst)) as (url, accepted):
        pool = Pool(keep=True, connect_timeout=1.0, read_timeout=2.0)
        try:
            first, second, third = await get_all(pool, url, 3, gap=0.05)
        finally:
            pool.close()
    assert isinstance(first, Response) and isinstance(third, Response) and first.status == third.status == 200
    assert isinstance(second, IdleClosed), repr(second)
    assert classify_exception(second) is FailureKind.IDLE_CLOSE
    assert describe(second) == ("IdleClosed:ECONNRESET" if rst else "IdleClosed")
    assert accepted[0] == 2


async def test_idle_close_through_the_generator() -> None:
    """The same through the load generator in keep-alive mode: request 0 opens the connection, request 1 reuses
    it 50 ms later and is never answered, request 2 (while 1 is in flight) takes a new connection."""
    async with serving(idle_timeout(0.4, rst=False)) as (url, _):
        records, _ = await collect(LoadSpec(url=url, rate=20.0, duration=0.15, mode=ConnMode.KEEPALIVE, connections=1, read_timeout=2.0))
    assert [(r.kind, r.detail) for r in records] == [("ok", ""), ("idle_close", "IdleClosed"), ("ok", "")]


async def cut_second_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await replying(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(reader, writer)
    await replying(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")(reader, writer)


@pytest.mark.parametrize(
    ("conversation", "kinds"),
    [
        (replying(b""), {"reset"}),  # a new connection closed before any byte
        (cut_second_response, {"ok", "reset"}),  # reused, cut mid-response
    ],
    ids=["fresh-connection", "reused-mid-response"],
)
async def test_other_closes_stay_reset(conversation: Conversation, kinds: set[str]) -> None:
    """A close on a new connection, or on a reused one after the response began, is `reset`, never `idle_close`."""
    async with serving(conversation) as (url, _):
        records, _ = await collect(spec(url, n=4, mode=ConnMode.KEEPALIVE))
    assert {r.kind for r in records} == kinds, {r.detail for r in records}
