"""probe_app: a tiny HTTP server whose startup, readiness and SIGTERM behaviour are switchable by env vars.

PORT (8080), STARTUP_DELAY (s before listening), READY_DELAY (s listening but /readyz fails),
SHUTDOWN = immediate | ignore | graceful, DRAIN_SECONDS (graceful: keep serving, not ready),
VERSION, POD_NAME (default: hostname), HANG=1 (accept TCP, never answer HTTP).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time

from aiohttp import web


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


POD = os.environ.get("POD_NAME") or socket.gethostname()
VERSION = os.environ.get("VERSION", "v1")
PORT = int(os.environ.get("PORT", "8080"))
SHUTDOWN = os.environ.get("SHUTDOWN", "immediate")
DRAIN = _env_float("DRAIN_SECONDS", 5.0)
_ids = itertools.count(1)


class State:
    def __init__(self) -> None:
        self.ready_at = time.monotonic() + _env_float("READY_DELAY", 0.0)
        self.draining = False

    def ready(self) -> bool:
        return not self.draining and time.monotonic() >= self.ready_at


def log(msg: str) -> None:
    print(f"probe_app {POD} {VERSION}: {msg}", file=sys.stderr, flush=True)


def make_app(state: State) -> web.Application:
    headers = {"X-Pod": POD, "X-Version": VERSION}

    async def root(_: web.Request) -> web.Response:
        rid = next(_ids)
        return web.json_response({"pod": POD, "version": VERSION, "id": rid}, headers={**headers, "X-Request-Id": str(rid)})

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


async def hang_forever(port: int) -> None:
    """Accept TCP connections and never answer: TCP probes pass, HTTP requests time out."""
    conns: list[asyncio.StreamWriter] = []

    async def on_conn(_: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        conns.append(w)

    server = await asyncio.start_server(on_conn, "0.0.0.0", port, reuse_address=True)
    log(f"HANG: accepting on :{port}, never answering")
    async with server:
        await server.serve_forever()


async def serve() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    if SHUTDOWN == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    delay = _env_float("STARTUP_DELAY", 0.0)
    if delay:
        log(f"starting in {delay}s")
        await asyncio.sleep(delay)
    if os.environ.get("HANG", "") not in ("", "0"):
        await hang_forever(PORT)
        return
    state = State()
    # no shutdown_timeout here: aiohttp 3.8 (Debian bookworm, the offline image) passes it to every
    # request handler, which then resets each connection; the default (60 s) bounds the drain anyway
    runner = web.AppRunner(make_app(state), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", PORT, reuse_address=True, backlog=1024)
    await site.start()
    log(f"listening on :{PORT}, shutdown={SHUTDOWN}")
    await done.wait()
    if SHUTDOWN == "graceful":
        log(f"SIGTERM: draining for {DRAIN}s")
        state.draining = True
        await asyncio.sleep(DRAIN)
        await site.stop()
        await runner.cleanup()
        log("drained, exiting")
        return
    log("SIGTERM: exiting at once")
    os._exit(0)


def main() -> None:
    asyncio.run(serve())


if __name__ == "__main__":
    main()
