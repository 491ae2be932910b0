"""probe_app: a tiny HTTP/1.1, HTTP/2 and gRPC server whose startup, readiness and SIGTERM behaviour are switchable
by env vars.

PORT (8080), STARTUP_DELAY (s before listening), READY_DELAY (s listening but /readyz fails),
SHUTDOWN = immediate | ignore | graceful, DRAIN_SECONDS (graceful: keep serving, not ready), DRAIN_CLOSE (graceful:
answer with Connection: close, HTTP/2: GOAWAY, while draining; default 1),
VERSION, POD_NAME (default: hostname), HANG=1 (HTTP/1.1: accept TCP, never answer HTTP),
H2_PORT (HTTP/2 cleartext, probe_app.h2app; 0: none), GRPC_PORT (gRPC, probe_app.grpcapp; 0: none),
MAX_CONN_AGE (HTTP/2 and gRPC: s after which a connection is sent GOAWAY; 0: never), DELAY (s each answer to `/`
and to gRPC's Get waits: requests in flight when the pod goes).
ROLE=registry (be a service registry instead), REGISTRY_URL (register with one and heartbeat): probe_app.registry.

The image holds this package's modules and runs `python3 -m probe_app.app`
with Debian's aiohttp 3.8 and h2 from its wheels: it imports nothing from the harness, uses only what aiohttp 3.8
offers, and imports h2 only when H2_PORT or GRPC_PORT is set (its gRPC server speaks gRPC over h2: no grpcio).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from probe_app.grpcapp import GrpcServer
    from probe_app.h2app import H2Server


@dataclass(frozen=True)
class Config:
    """Everything the app reads from its environment, read once when it starts (Config.from_env)."""

    port: int = 8080
    """TCP port, on every interface."""
    startup_delay: float = 0.0
    """Seconds to sleep before listening (a slow start)."""
    ready_delay: float = 0.0
    """Seconds of listening while /readyz still answers 503."""
    shutdown: str = "immediate"
    """On SIGTERM: `immediate` exits at once, `ignore` keeps serving, `graceful` drains then exits."""
    drain_seconds: float = 5.0
    """graceful: seconds to keep serving (with /readyz 503) before closing the listener."""
    drain_close: bool = True
    """graceful: while draining, answer with `Connection: close` so keep-alive clients leave before the listener
    closes (DRAIN_CLOSE=0 keeps their connections open: the exit then resets them)."""
    version: str = "v1"
    """Sent in X-Version and in the JSON body."""
    pod_name: str = ""
    """Sent in X-Pod; empty means the hostname."""
    hang: bool = False
    """Accept TCP connections and never answer HTTP (the HTTP/1.1 port)."""
    h2_port: int = 0
    """HTTP/2 cleartext (prior knowledge) on this port; 0: none."""
    grpc_port: int = 0
    """gRPC on this port; 0: none."""
    max_conn_age: float = 0.0
    """HTTP/2 and gRPC: seconds after which a connection is sent GOAWAY (and closed once its streams end); 0: never."""
    delay: float = 0.0
    """Seconds each answer to `/` (and gRPC's Get) waits before it is sent: requests in flight when the pod goes."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        return cls(
            port=int(env.get("PORT", cls.port)),
            startup_delay=float(env.get("STARTUP_DELAY", cls.startup_delay)),
            ready_delay=float(env.get("READY_DELAY", cls.ready_delay)),
            shutdown=env.get("SHUTDOWN", cls.shutdown),
            drain_seconds=float(env.get("DRAIN_SECONDS", cls.drain_seconds)),
            drain_close=env.get("DRAIN_CLOSE", "1") not in ("", "0"),
            version=env.get("VERSION", cls.version),
            pod_name=env.get("POD_NAME") or socket.gethostname(),
            hang=env.get("HANG", "") not in ("", "0"),
            h2_port=int(env.get("H2_PORT", cls.h2_port)),
            grpc_port=int(env.get("GRPC_PORT", cls.grpc_port)),
            max_conn_age=float(env.get("MAX_CONN_AGE", cls.max_conn_age)),
            delay=float(env.get("DELAY", cls.delay)),
        )


class State:
    def __init__(self, ready_delay: float) -> None:
        self.ready_at = time.monotonic() + ready_delay
        self.draining = False

    def ready(self) -> bool:
        return not self.draining and time.monotonic() >= self.ready_at


def log(cfg: Config, msg: str) -> None:
    print(f"probe_app {cfg.pod_name} {cfg.version}: {msg}", file=sys.stderr, flush=True)


def make_app(cfg: Config, state: State) -> web.Application:
    headers = {"X-Pod": cfg.pod_name, "X-Version": cfg.version}
    ids = itertools.count(1)

    async def root(_: web.Request) -> web.Response:
        if cfg.delay:
            await asyncio.sleep(cfg.delay)
        rid = next(ids)
        body = {"pod": cfg.pod_name, "version": cfg.version, "id": rid}
        resp = web.json_response(body, headers={**headers, "X-Request-Id": str(rid)})
        if state.draining and cfg.drain_close:
            resp.force_close()  # Connection: close, so the client's pool drops this connection now, not at our exit
        return resp

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok", headers=headers)

    async def readyz(_: web.Request) -> web.Response:
        if state.ready():
            return web.Response(text="ready", headers=headers)
        return web.Response(status=503, text="draining" if state.draining else "not ready", headers=headers)

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def hang_forever(cfg: Config) -> None:
    """Accept TCP connections and never answer: TCP probes pass, HTTP requests time out."""
    conns: list[asyncio.StreamWriter] = []

    async def on_conn(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        conns.append(w)

    server = await asyncio.start_server(on_conn, "0.0.0.0", cfg.port, reuse_address=True)
    log(cfg, f"HANG: accepting on :{cfg.port}, never answering")
    async with server:
        await server.serve_forever()


async def serve(cfg: Config) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    if cfg.shutdown == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    if cfg.startup_delay:
        log(cfg, f"starting in {cfg.startup_delay}s")
        await asyncio.sleep(cfg.startup_delay)
    if cfg.hang:
        await hang_forever(cfg)
        return
    state = State(cfg.ready_delay)
    # no shutdown_timeout here: aiohttp 3.8 (Debian bookworm, the offline image) passes it to every
    # request handler, which then resets each connection; the default (60 s) bounds the drain anyway
    runner = web.AppRunner(make_app(cfg, state), access_log=None, handle_signals=False)
    await runner.setup()
    h2: H2Server | None = None
    grpc: GrpcServer | None = None
    if cfg.h2_port:  # before the HTTP/1.1 port: /readyz answering 200 means every port listens
        from probe_app.h2app import H2Server

        h2 = H2Server(cfg, state)
        await h2.start()
    if cfg.grpc_port:
        from probe_app.grpcapp import GrpcServer

        grpc = GrpcServer(cfg, state)
        await grpc.start()
    site = web.TCPSite(runner, "0.0.0.0", cfg.port, reuse_address=True, backlog=1024)
    await site.start()
    log(cfg, f"listening on :{cfg.port}, shutdown={cfg.shutdown}")
    registration: asyncio.Task[None] | None = None
    if os.environ.get("REGISTRY_URL"):  # registers once ready, heartbeats until the process ends: probe_app.registry
        from probe_app.registry import keep_registered

        registration = asyncio.create_task(keep_registered(cfg.port, cfg.pod_name, state.ready, lambda m: log(cfg, m)))
    await done.wait()
    if cfg.shutdown == "graceful":
        log(cfg, f"SIGTERM: draining for {cfg.drain_seconds}s")
        state.draining = True
        for mux in (h2, grpc):
            if mux is not None:
                mux.drain()
        await asyncio.sleep(cfg.drain_seconds)
        await asyncio.gather(site.stop(), *(s.stop() for s in (h2, grpc) if s is not None))
        await runner.cleanup()
        if registration is not None:
            registration.cancel()  # it heartbeat through the drain: the app never deregisters by itself
        log(cfg, "drained, exiting")
        return
    log(cfg, "SIGTERM: exiting at once")
    os._exit(0)


def main() -> None:
    cfg = Config.from_env()
    if os.environ.get("ROLE") == "registry":  # the same image as the service registry
        from probe_app.registry import serve_registry

        asyncio.run(serve_registry(cfg.port, lambda m: log(cfg, m)))
        return
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
