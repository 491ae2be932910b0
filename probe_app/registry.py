"""The probe app as a service registry (ROLE=registry), and an app instance's side of one (REGISTRY_URL set): the shape
of Eureka, kept tiny.

The registry holds one application's instances in memory and speaks HTTP/1.1 JSON:
  POST   /instances               {"id": ID, "address": "HOST:PORT"}: register, status UP, lease renewed now (204)
  PUT    /instances/ID/heartbeat  renew the lease (200); 404 if unknown or expired: the instance registers again
  PUT    /instances/ID/status?value=DOWN|UP   set the status (200, 404 if unknown); heartbeats keep it, as Eureka
                                  keeps a status override
  DELETE /instances/ID            forget it (200, 404 if unknown)
  GET    /instances               {"expiry": EXPIRY_SECONDS, "instances": [{"id": ID, "address": "HOST:PORT"}, ...]}:
                                  those UP whose lease was renewed at most EXPIRY_SECONDS ago; an expired one is evicted
  GET    /healthz, /readyz        200 (the registry pod's probes)

An app instance with REGISTRY_URL registers POD_IP:PORT under its POD_NAME once it is ready, retrying every
RETRY_SECONDS until the registry answers, then heartbeats every HEARTBEAT_SECONDS, registering again on a 404. It
never deregisters by itself, at SIGTERM or otherwise: a gone pod stays listed until its lease expires (the naive
case), unless its preStop marks it DOWN first:

    python3 -m probe_app.registry down     # (or up) REGISTRY_URL and POD_NAME from the environment

exits 0 once the registry confirmed, else prints one line and exits 1 (within CALL_TIMEOUT seconds).

Like probe_app.app it runs in the probe image: the standard library and aiohttp 3.8 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from aiohttp import web

UP, DOWN = "UP", "DOWN"
RETRY_SECONDS = 1.0
"""Between attempts to register while the registry does not answer (it may start after the app)."""
CALL_TIMEOUT = 3.0
"""Seconds for one call to the registry, name lookup included."""


def _pod_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())  # a pod's hostname resolves to its IP (/etc/hosts)
    except OSError:
        return "127.0.0.1"


@dataclass(frozen=True)
class Settings:
    """What the registry and its instances read from the environment (Settings.from_env), besides the app's PORT and
    POD_NAME."""

    role: str = ""
    """`registry`: serve the registry instead of the app."""
    registry_url: str = ""
    """The app: register with the registry at this URL (e.g. http://registry); empty: no registration."""
    pod_ip: str = ""
    """The address the app registers (with its PORT); default: what its hostname resolves to."""
    heartbeat_seconds: float = 5.0
    """The app: seconds between heartbeats."""
    expiry_seconds: float = 30.0
    """The registry: an instance whose last heartbeat is older than this is no longer listed."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            role=env.get("ROLE", cls.role),
            registry_url=env.get("REGISTRY_URL", cls.registry_url).rstrip("/"),
            pod_ip=env.get("POD_IP") or _pod_ip(),
            heartbeat_seconds=float(env.get("HEARTBEAT_SECONDS", cls.heartbeat_seconds)),
            expiry_seconds=float(env.get("EXPIRY_SECONDS", cls.expiry_seconds)),
        )


ENV_VARS = frozenset({"ROLE", "REGISTRY_URL", "POD_IP", "HEARTBEAT_SECONDS", "EXPIRY_SECONDS"})
"""The variables Settings reads (probe_app.local strips them from an inherited environment)."""


@dataclass
class Instance:
    id: str
    address: str
    renewed: float
    """When it last registered or heartbeat (the caller's monotonic clock)."""
    status: str = UP


class Registry:
    """The instances, their status and their leases; every call takes the time `now` (monotonic seconds)."""

    def __init__(self, expiry: float, on_evict: Callable[[Instance], None] = lambda _: None) -> None:
        self.expiry = expiry
        self.instances: dict[str, Instance] = {}
        self.on_evict = on_evict

    def evict(self, now: float) -> None:
        """Forget the instances whose lease expired (each one passed to on_evict)."""
        for i in [i for i in self.instances.values() if now - i.renewed > self.expiry]:
            del self.instances[i.id]
            self.on_evict(i)

    def register(self, iid: str, address: str, now: float) -> None:
        self.instances[iid] = Instance(iid, address, now)

    def heartbeat(self, iid: str, now: float) -> bool:
        """Renew the lease; False if the instance is unknown or its lease expired (it must register again)."""
        self.evict(now)
        if iid not in self.instances:
            return False
        self.instances[iid].renewed = now
        return True

    def set_status(self, iid: str, status: str, now: float) -> bool:
        self.evict(now)
        if iid not in self.instances:
            return False
        self.instances[iid].status = status
        return True

    def delete(self, iid: str) -> bool:
        return self.instances.pop(iid, None) is not None

    def listed(self, now: float) -> list[Instance]:
        """The instances a client is given: UP, lease not expired."""
        self.evict(now)
        return [i for i in self.instances.values() if i.status == UP]


def make_registry_app(registry: Registry, say: Callable[[str], None]) -> web.Application:
    now = time.monotonic

    async def register(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            iid, address = str(body["id"]), str(body["address"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'expected {"id": ..., "address": "HOST:PORT"}'}, status=400)
        registry.register(iid, address, now())
        say(f"{iid} registered at {address}")
        return web.Response(status=204)

    async def heartbeat(request: web.Request) -> web.Response:
        ok = registry.heartbeat(request.match_info["id"], now())
        return web.Response(status=200 if ok else 404)

    async def status(request: web.Request) -> web.Response:
        iid, value = request.match_info["id"], request.query.get("value", "")
        if value not in (UP, DOWN):
            return web.json_response({"error": "value must be UP or DOWN"}, status=400)
        if not registry.set_status(iid, value, now()):
            return web.Response(status=404)
        say(f"{iid} {value}")
        return web.Response(status=200)

    async def delete(request: web.Request) -> web.Response:
        iid = request.match_info["id"]
        if not registry.delete(iid):
            return web.Response(status=404)
        say(f"{iid} deleted")
        return web.Response(status=200)

    async def listing(_: web.Request) -> web.Response:
        instances = [{"id": i.id, "address": i.address} for i in registry.listed(now())]
        return web.json_response({"expiry": registry.expiry, "instances": instances})

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/instances", register)
    app.router.add_put("/instances/{id}/heartbeat", heartbeat)
    app.router.add_put("/instances/{id}/status", status)
    app.router.add_delete("/instances/{id}", delete)
    app.router.add_get("/instances", listing)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    return app


async def serve_registry(port: int, say: Callable[[str], None]) -> None:
    """ROLE=registry: serve until SIGTERM or SIGINT, then exit at once."""
    s = Settings.from_env()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    registry = Registry(s.expiry_seconds, lambda i: say(f"{i.id} expired (no heartbeat for {s.expiry_seconds:g}s)"))
    runner = web.AppRunner(make_registry_app(registry, say), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port, reuse_address=True).start()
    say(f"registry listening on :{port}, expiry {s.expiry_seconds:g}s")
    await done.wait()
    await runner.cleanup()


async def keep_registered(port: int, instance: str, ready: Callable[[], bool], say: Callable[[str], None]) -> None:
    """The app's side (REGISTRY_URL set): once ready() is true, register and heartbeat for as long as the process runs."""
    s = Settings.from_env()
    url, address = s.registry_url, f"{s.pod_ip}:{port}"
    while not ready():
        await asyncio.sleep(0.1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT)) as session:
        registered, trouble = False, ""
        while True:
            try:
                if registered:
                    async with session.put(f"{url}/instances/{quote(instance, safe='')}/heartbeat") as resp:
                        registered = resp.status == 200
                    if not registered:
                        say(f"registry at {url}: heartbeat HTTP {resp.status}, registering again")
                if not registered:
                    async with session.post(f"{url}/instances", json={"id": instance, "address": address}) as resp:
                        registered = resp.status < 300
                    say(f"registered at {url} as {instance} ({address})" if registered else f"registry at {url}: HTTP {resp.status}")
                trouble = ""
            except (TimeoutError, aiohttp.ClientError) as e:
                if type(e).__name__ != trouble:  # once per kind of trouble, not once per attempt
                    say(f"registry at {url}: {type(e).__name__} {e}")
                trouble = type(e).__name__
            await asyncio.sleep(s.heartbeat_seconds if registered else RETRY_SECONDS)


async def set_status(url: str, instance: str, status: str) -> str:
    """Set an instance's status in the registry at url; "" once it confirmed, else why not."""
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
    try:
        async with session, session.put(f"{url}/instances/{quote(instance, safe='')}/status", params={"value": status}) as resp:
            return "" if resp.status == 200 else f"HTTP {resp.status}"
    except (TimeoutError, aiohttp.ClientError) as e:
        return f"{type(e).__name__} {e}".strip()


def main(argv: list[str], env: Mapping[str, str] = os.environ) -> int:
    """`down` or `up`: set this pod's instance (POD_NAME, default the hostname) to that status at REGISTRY_URL."""
    if len(argv) != 1 or argv[0] not in ("down", "up"):
        print("usage: python3 -m probe_app.registry down|up", file=sys.stderr)
        return 2
    url, instance, status = Settings.from_env(env).registry_url, env.get("POD_NAME") or socket.gethostname(), argv[0].upper()
    if not url:
        print("probe_app.registry: REGISTRY_URL is not set", file=sys.stderr)
        return 1
    why = asyncio.run(set_status(url, instance, status))
    print(f"probe_app.registry: {instance} {status} at {url}" + (f" failed: {why}" if why else ""), file=sys.stderr, flush=True)
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
