"""Client-side discovery through a service registry (`--discovery registry`): the client lists the instances in a
registry (the probe app as ROLE=registry, Eureka's shape kept tiny: probe_app.registry), keeps the list `fetch`
seconds, as Eureka's client refetches it every registryFetchIntervalSeconds (30 s by default), and calls each
instance's own address in turn: the cache and the turns of `--discovery dns` (harness.discovery.Discoverer), fed by
the registry instead of DNS.

An instance stays listed until it is marked DOWN or deleted, or until its lease expires (the registry's `expiry`
seconds after its last heartbeat). A pod gone before that is called directly, `refused` or `no_route` as with DNS,
for up to expiry + fetch seconds after its last heartbeat: `keep`, which the harness adds to the tail.

The load's URL names the registry: with http://HOST[:PORT]/PATH the client lists GET http://HOST:PORT/instances
(HOST resolved once, when the load starts) and sends each request, GET PATH, to the next instance's address
(`host:port`; the Host header still names the registry's HOST). A fetch that fails (no answer within FETCH_TIMEOUT,
a refused connection, an HTTP error, a listing it cannot read, no instance listed) fails the requests that waited for
it (kind `other`, detail `registry:...`); the next request asks again.

In the client pod, `python3 -m harness.registryclient URL TIMEOUT POD,...` is the gate before the window: it returns
once the registry lists every pod named (instance ids are pod names), or prints why not and exits 1.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from dataclasses import dataclass

from harness import serving
from harness.discovery import Answer, Discoverer
from harness.errors import ClusterError
from harness.httpclient import endpoint
from harness.waiting import wait_for

LIST_PATH = "/instances"
FETCH_TIMEOUT = 2.0
MAX_RESPONSE = 1 << 20


class RegistryError(Exception):
    """A fetch that gave no instance; str() is the detail recorded with the requests it failed (`registry:...`)."""


@dataclass(frozen=True)
class Listing:
    instances: tuple[tuple[str, str], ...]
    """(id, "host:port") of each instance the registry lists, in its order."""
    expiry: float
    """Seconds after its last heartbeat that the registry still lists an instance."""


def parse(raw: bytes) -> Listing:
    """The listing in a whole HTTP/1.x response to GET /instances (its body JSON, ended by the close)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ", 2)
    if not sep or len(status) < 2 or not status[0].startswith(b"HTTP/1."):
        raise RegistryError("not an HTTP/1.x response")
    if status[1] != b"200":
        raise RegistryError(f"HTTP {status[1].decode(errors='replace')}")
    try:
        doc = json.loads(body)
        instances = tuple((str(i["id"]), str(i["address"])) for i in doc["instances"])
        expiry = float(doc["expiry"])
        for _, address in instances:
            host, _, port = address.rpartition(":")
            if not host or not 0 < int(port) < 65536:
                raise ValueError(address)
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(f"bad listing ({type(e).__name__}: {e})") from None
    return Listing(instances, expiry)


async def fetch(host: str, port: int, timeout: float = FETCH_TIMEOUT) -> Listing:
    """One GET /instances on a new connection (`Connection: close`), within `timeout` seconds."""
    request = f"GET {LIST_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(request.encode("latin-1"))
                raw = b""
                while chunk := await reader.read(65536):
                    raw += chunk
                    if len(raw) > MAX_RESPONSE:
                        raise RegistryError("response over 1 MiB")
            finally:
                writer.close()
    except TimeoutError:
        raise RegistryError("timeout") from None
    except OSError as e:
        raise RegistryError(type(e).__name__) from None
    return parse(raw)


class RegistryResolver(Discoverer):
    """The client's view of the registry at host:port: the instances listed, kept `fetch` seconds."""

    def __init__(self, host: str, port: int, fetch: float) -> None:
        super().__init__(cache=fetch)
        self.host = host
        self.port = port
        self.expiry = 0.0

    @property
    def keep(self) -> float:
        """Seconds a gone instance may still be called, known after the first fetch: the registry lists it up to its
        expiry after its last heartbeat, and the client keeps that listing up to its fetch interval more."""
        return self.cache + self.expiry

    async def _ask(self) -> Answer:
        listing = await fetch(self.host, self.port)
        if not listing.instances:
            raise RegistryError("no instance listed")
        self.expiry = listing.expiry
        return Answer(tuple(address for _, address in listing.instances), self.cache)


async def _registry(url: str) -> tuple[str, int]:
    """The registry's address from the load's URL, its name resolved (once)."""
    u = endpoint(url)
    host, port = u.host, u.port
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError as e:
        raise RegistryError(f"cannot resolve {host}: {e}") from None
    return str(infos[0][4][0]), port


async def connect(url: str, fetch: float) -> RegistryResolver:
    """A resolver for the registry the URL names, with its first listing in hand (the schedule must not start before
    the client knows an instance); RegistryError if it cannot list one."""
    host, port = await _registry(url)
    resolver = RegistryResolver(host, port, fetch)
    await resolver.answer()
    return resolver


async def wait_listed(url: str, timeout: float, pods: frozenset[str]) -> None:
    """The gate before a window: the registry the URL names lists every pod in `pods` (ClusterError after `timeout`)."""

    async def probe() -> tuple[bool | None, str]:
        try:
            listed = {iid for iid, _ in (await fetch(*await _registry(url))).instances}
        except RegistryError as e:
            return None, str(e)
        missing = sorted(pods - listed)
        return (None, f"not listed yet: {', '.join(missing)}") if missing or not listed else (True, f"{len(listed)} listed")

    await wait_for(probe, timeout=timeout, every=0.2, what=f"the registry at {url} listing every ready pod", error=ClusterError)


if __name__ == "__main__":
    sys.exit(serving.main(sys.argv[1:], wait_listed))
