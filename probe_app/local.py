"""The probe app as a real local process on 127.0.0.1, for the tests and the benchmark.

    with running(SHUTDOWN="graceful", DRAIN_SECONDS="1") as app:
        ...  # app.url, app.port, app.proc, app.log

running() starts `python -m probe_app.app` on a free loopback port (or the one given), waits until /readyz
answers 200 (bounded), and kills and reaps the process when the block ends, however it ends. The keyword
arguments are the app's environment variables (see probe_app.app); the ones inherited from the caller's
environment are dropped, so only what is passed here configures the app.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from harness.errors import EnvironmentProblem
from harness.waiting import wait_for_sync
from probe_app.app import Config
from probe_app.registry import ENV_VARS

APP_VARS = frozenset(f.name.upper() for f in fields(Config)) | ENV_VARS  # each Config field is read from its name in upper case


def free_port() -> int:
    """A loopback port nobody listens on (bound, read, closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 1.0) -> tuple[int, dict[str, str]]:
    """One blocking GET on 127.0.0.1: status and headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


@dataclass(frozen=True)
class LocalApp:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    """The app's stdout and stderr."""
    env: Mapping[str, str]
    """The app variables it was started with (besides PORT)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def h2_url(self) -> str:
        """The HTTP/2 port's URL (started with H2_PORT)."""
        return f"http://127.0.0.1:{self.env['H2_PORT']}/"

    @property
    def grpc_url(self) -> str:
        """The gRPC port's URL, as mode grpc takes it (started with GRPC_PORT)."""
        return f"http://127.0.0.1:{self.env['GRPC_PORT']}/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Return once GET /readyz answers 200; raise EnvironmentProblem (with the app's log) otherwise."""

        def probe() -> tuple[bool | None, str]:
            self._alive()
            try:
                status = http_get(self.port, "/readyz", timeout=0.5)[0]
            except (OSError, http.client.HTTPException) as e:
                return None, f"GET /readyz: {type(e).__name__}"
            return (True if status == 200 else None), f"GET /readyz: {status}"

        self._wait(probe, timeout, "answer /readyz with 200")

    def wait_listening(self, timeout: float = 10.0) -> None:
        """Return once a TCP connect succeeds: the only sign of life a HANG=1 app gives."""

        def probe() -> tuple[bool | None, str]:
            self._alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            except OSError as e:
                return None, f"connect: {e.strerror or type(e).__name__}"
            return True, "listening"

        self._wait(probe, timeout, "accept TCP connections")

    def stop(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise EnvironmentProblem(f"probe_app on :{self.port} exited with {self.proc.returncode}")

    def _wait(self, probe: Callable[[], tuple[bool | None, str]], timeout: float, what: str) -> None:
        try:
            wait_for_sync(
                probe, timeout=timeout, every=0.05, what=f"probe_app on 127.0.0.1:{self.port} to {what}", error=EnvironmentProblem
            )
        except EnvironmentProblem as e:
            raise EnvironmentProblem(f"{e}; its log:\n{self.output()}") from None


@contextlib.contextmanager
def running(
    port: int | None = None, *, ready: bool = True, timeout: float = 10.0, log: Path | None = None, **env: str
) -> Iterator[LocalApp]:
    """Run the probe app for the duration of the block; `ready=False` skips the wait for /readyz.

    `log` receives the app's output (default: a temporary file, deleted at the end).
    """
    port = port or free_port()
    own_log = log is None
    if log is None:
        fd, name = tempfile.mkstemp(prefix=f"probe_app-{port}-", suffix=".log")
        os.close(fd)
        log = Path(name)
    inherited = {k: v for k, v in os.environ.items() if k not in APP_VARS}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "probe_app.app"],
            env={**inherited, "PYTHONUNBUFFERED": "1", **env, "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=fh,
        )
    app = LocalApp(proc, port, log, env)
    try:
        if ready:
            app.wait_ready(timeout)
        yield app
    finally:
        app.stop()
        if own_log:
            log.unlink(missing_ok=True)
