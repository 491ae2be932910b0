"""Client-side discovery (`--discovery dns`): the client resolves a headless Service's name itself, keeps the
answer while it is fresh and sends each request straight to one pod IP, the next one in turn (client-side load
balancing, as gRPC's round_robin or a registry client does). kube-proxy is not on the path, so a pod that is gone
but still in the client's answer is hit directly: `refused` while its IP still has a network namespace and
nothing listens, `no_route` once the IP is gone (see harness.netguard), until the answer expires.

Fresh: for the answer's own TTL (the records' smallest), or for a fixed `cache` time when the client keeps
answers longer than DNS says (a JVM keeps them 30 s by default). One refresh at a time; requests that find the
answer stale wait for it. A failed lookup fails the requests that waited for it (kind `other`, detail `dns:...`);
the next request asks again. No retry on another address: one scheduled request is one attempt.

The resolver is a plain DNS client (RFC 1035, A records over UDP) asking the first `nameserver` of
/etc/resolv.conf, as glibc's stub resolver does; names ending in `.svc` get the cluster domain from the `search`
line (`svc.<domain>`), so the same name works on any cluster's DNS.

The cache and the turns (Discoverer) are shared with `--discovery registry`, whose answers come from a service
registry instead (harness.registryclient).
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
DNS_PORT = 53
LOOKUP_TIMEOUT = 2.0
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class DnsError(Exception):
    """A lookup that gave no address; str() is the detail recorded with the requests it failed (`dns:...`)."""


@dataclass(frozen=True)
class Answer:
    addresses: tuple[str, ...]
    ttl: float
    """The smallest TTL of the A records, in seconds."""


def resolv_conf(path: Path | None = None) -> tuple[str, str]:
    """(first nameserver, cluster domain) from a resolv.conf (default RESOLV_CONF); the domain from a
    `search svc.<domain>` entry, default cluster.local."""
    path = path or RESOLV_CONF
    nameserver, domain = "", "cluster.local"
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver" and not nameserver:
            nameserver = words[1]
        elif words and words[0] == "search":
            domain = next((w.removeprefix("svc.") for w in words[1:] if w.startswith("svc.")), domain)
    if not nameserver:
        raise DnsError(f"no nameserver in {path}")
    return nameserver, domain


def qualify(name: str, domain: str) -> str:
    return f"{name}.{domain}" if name.endswith(".svc") else name


def query(name: str, qid: int) -> bytes:
    """A standard query for the A records of name, recursion desired."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", 1, 1)


def _skip_name(msg: bytes, i: int) -> int:
    while True:
        n = msg[i]
        if n & 0xC0 == 0xC0:  # a compression pointer ends the name
            return i + 2
        if n == 0:
            return i + 1
        i += 1 + n


def parse(msg: bytes, qid: int) -> Answer:
    """The A records of a response to query(..., qid); raises DnsError for an error, a truncated response or
    no address."""
    if len(msg) < 12:
        raise DnsError("short response")
    rid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    if rid != qid or not flags & 0x8000:
        raise DnsError("response to another query")
    if flags & 0x000F:
        raise DnsError(_RCODES.get(flags & 0x000F, f"rcode {flags & 0x000F}"))
    if flags & 0x0200:
        raise DnsError("truncated (over 512 bytes)")
    i = 12
    for _ in range(qd):
        i = _skip_name(msg, i) + 4
    addresses: list[str] = []
    ttl: int | None = None
    for _ in range(an):
        i = _skip_name(msg, i)
        rtype, _rclass, rttl, rdlen = struct.unpack("!HHIH", msg[i : i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            addresses.append(socket.inet_ntoa(msg[i : i + 4]))
            ttl = rttl if ttl is None else min(ttl, rttl)
        i += rdlen
    if not addresses:
        raise DnsError("no address")
    return Answer(tuple(addresses), float(ttl or 0))


async def lookup(name: str, nameserver: str, port: int, timeout: float = LOOKUP_TIMEOUT) -> Answer:
    """One A query over UDP (one attempt, `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    qid = random.randrange(1 << 16)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        await loop.sock_connect(s, (nameserver, port))
        await loop.sock_sendall(s, query(name, qid))
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        return parse(await loop.sock_recv(s, 4096), qid)
                    except DnsError as e:
                        if str(e) != "response to another query":
                            raise
        except TimeoutError:
            raise DnsError("timeout") from None
        except OSError as e:
            raise DnsError(type(e).__name__) from None


class Discoverer:
    """The client's view of where the instances are: the latest answer kept while fresh, its addresses handed out in
    turn. Subclasses say how an answer is got (_ask): Resolver from DNS, harness.registryclient from a registry."""

    def __init__(self, cache: float = 0.0) -> None:
        """cache: keep each answer this many seconds instead of its TTL (0: the TTL)."""
        self.cache = cache
        self._answer: Answer | None = None
        self._expires = 0.0
        self._refresh: asyncio.Task[Answer] | None = None
        self._next = 0
        self.lookups = 0

    @property
    def keep(self) -> float:
        """Seconds a gone address may still be called, known after the first answer: the client's cache time."""
        return self.cache or (self._answer.ttl if self._answer else 0.0)

    async def _ask(self) -> Answer:
        raise NotImplementedError

    async def _lookup(self) -> Answer:
        try:
            answer = await self._ask()
        finally:
            self._refresh = None
        self.lookups += 1
        self._answer = answer
        self._expires = time.monotonic() + (self.cache or answer.ttl)
        return answer

    async def answer(self) -> Answer:
        if self._answer is not None and time.monotonic() < self._expires:
            return self._answer
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._lookup())
        return await asyncio.shield(self._refresh)

    async def next_address(self) -> str:
        addresses = (await self.answer()).addresses
        self._next += 1
        return addresses[self._next % len(addresses)]

    async def next_endpoint(self, port: int) -> tuple[str, int]:
        """The next address and its port: the one it names (`host:port`, a registry's instances) or else `port`
        (a DNS answer names none: the URL's)."""
        address = await self.next_address()
        host, sep, own = address.rpartition(":")
        return (host, int(own)) if sep else (address, port)


class Resolver(Discoverer):
    """A name's A records from DNS."""

    def __init__(self, name: str, nameserver: str, port: int | None = None, cache: float = 0.0) -> None:
        """port: the nameserver's (default DNS_PORT); cache: keep each answer this many seconds instead of its TTL
        (0: the TTL)."""
        super().__init__(cache)
        self.name = name
        self.nameserver = nameserver
        self.port = port or DNS_PORT

    async def _ask(self) -> Answer:
        return await lookup(self.name, self.nameserver, self.port)
