"""Helpers shared by the tests: loopback ports, a threaded raw-socket server, the probe app as a process.

Everything here talks only to 127.0.0.1. Fixtures wrapping these live in conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import owner
from harness.load import LoadResult, LoadSpec, run_load
from harness.records import RequestRecord
from probe_app.local import LocalApp, running
from probe_app.local import free_port as free_port  # re-exported for the tests
from probe_app.local import http_get as http_get

REPO = Path(__file__).resolve().parent.parent


def dead_owner() -> str:
    """The owner (harness.owner) of a process that has ended: as a killed harness run leaves it on what it made."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        return owner.of(p.pid)
    finally:
        p.kill()
        p.wait()


async def collect(spec: LoadSpec) -> tuple[list[RequestRecord], LoadResult]:
    """Run the real load generator and return its records in seq order."""
    records: list[RequestRecord] = []
    result = await run_load(spec, records.append)
    return sorted(records, key=lambda r: r.seq), result


# --- a raw TCP server on 127.0.0.1, one handler call per accepted connection -------------------------

Handler = Callable[[socket.socket], bool]  # True: hold the connection open until teardown


def read_request(conn: socket.socket, limit: int = 65536) -> bytes:
    """Read until the end of the HTTP request head (bounded in bytes and by the socket timeout)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def respond(status: int, reason: str, headers: dict[str, str] | None = None) -> Handler:
    def handle(conn: socket.socket) -> bool:
        read_request(conn)
        head = [f"HTTP/1.1 {status} {reason}", "Content-Length: 2", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(head) + "\r\n\r\nhi").encode())
        return False

    return handle


def reset(read_first: bool) -> Handler:
    """Close with SO_LINGER 0, which sends RST instead of FIN."""

    def handle(conn: socket.socket) -> bool:
        if read_first:
            read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return False

    return handle


def hold(conn: socket.socket) -> bool:
    """Accept and never answer."""
    return True


class RawServer:
    def __init__(self, handler: Handler, backlog: int = 128, max_conns: int = 5000) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self.accepted = 0
        self._handler = handler
        self._max = max_conns
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"raw-server-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and self.accepted < self._max and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.settimeout(1.0)
            try:
                keep = self._handler(conn)
            except OSError:
                keep = False
            if keep:
                self._held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for conn in self._held:
            conn.close()


# --- a TCP forwarder on 127.0.0.1: kube-proxy's part in front of the pods -----------------------------


class Forwarder:
    """Each connection accepted is relayed to 127.0.0.1:`backend` as it is when the connection opens (the test may
    change it, as kube-proxy's rules change when an endpoint goes); a side's close (FIN or reset) closes the other.
    Its own event loop in a thread, so the relaying never waits on the test's loop."""

    def __init__(self, backend: int) -> None:
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"forwarder-{self.port}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=5)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, sock=self.sock)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.backend)
        except OSError:
            client_w.transport.abort()  # refused by the backend: the client sees its connection reset
            return
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for t in asyncio.all_tasks() - {asyncio.current_task()}:
                t.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


async def _pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
    except OSError:
        w.transport.abort()
    finally:
        w.close()


# --- the probe app as a real process --------------------------------------------------------------


class ProbeApps:
    """Start probe_app processes (probe_app.local.running); each one is killed and reaped at teardown."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self._stack = contextlib.ExitStack()
        self.started = 0

    def start(self, port: int | None = None, ready: bool = True, timeout: float = 10.0, **env: str) -> LocalApp:
        """`ready=False`: return at once, without waiting for /readyz (a HANG app never answers it)."""
        self.started += 1
        log = self._tmp / f"probe-{self.started}.log"
        # timeout is passed by name so that **env can only fill running()'s **env (it is typed str, timeout float)
        return self._stack.enter_context(running(port, ready=ready, timeout=timeout, log=log, **{"POD_NAME": "probe-0", **env}))

    def close(self) -> None:
        self._stack.close()
