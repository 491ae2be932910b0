"""Helpers shared by the tests: loopback ports, a threaded raw-socket server, the probe app as a process.

Everything here talks only to 127.0.0.1. Fixtures wrapping these live in conftest.py.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.load import LoadResult, LoadSpec, run_load
from harness.records import RequestRecord

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on (bound, read, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def collect(spec: LoadSpec) -> tuple[list[RequestRecord], LoadResult]:
    """Run the real load generator and return its records in seq order."""
    records: list[RequestRecord] = []
    result = await run_load(spec, records.append)
    return sorted(records, key=lambda r: r.seq), result


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, dict[str, str]]:
    """One blocking GET on 127.0.0.1 (for readiness polling outside the load generator)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


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


# --- the probe app as a real process --------------------------------------------------------------


@dataclass
class ProbeApp:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class ProbeApps:
    """Start probe_app processes; every one still running at teardown is SIGKILLed and reaped."""

    def __init__(self, tmp: Path) -> None:
        self._tmp = tmp
        self.apps: list[ProbeApp] = []

    def start(self, port: int | None = None, ready: bool = True, **env: str) -> ProbeApp:
        port = port or free_port()
        log = self._tmp / f"probe-{port}-{len(self.apps)}.log"
        full = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1", "POD_NAME": "probe-0", **env}
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "probe_app.app"], cwd=REPO, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=fh
            )
        app = ProbeApp(proc, port, log, env)
        self.apps.append(app)
        if ready:
            self.wait_ready(app)
        return app

    def wait_ready(self, app: ProbeApp, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if app.proc.poll() is not None:
                pytest.fail(f"probe_app exited with {app.proc.returncode}:\n{app.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(app.port, "/readyz", timeout=0.5)[0] == 200:
                    return
            time.sleep(0.05)
        pytest.fail(f"probe_app on :{app.port} not ready within {timeout}s:\n{app.output()}")

    def close(self) -> None:
        for app in self.apps:
            if app.proc.poll() is None:
                app.proc.kill()
            app.proc.wait(timeout=10)
