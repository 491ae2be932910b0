"""Open-loop constant-rate HTTP load: each request starts at its scheduled time, whatever the server does.

Lateness (actual start - scheduled start) is recorded per request, so a generator that falls behind is
visible instead of silently lowering the rate (no coordinated omission). A cap on in-flight requests
keeps memory bounded; a request that would exceed it is recorded as `skipped`, never delayed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.classify import FailureKind, classify_exception, classify_status, describe
from harness.discovery import Discoverer, DnsError, Resolver, qualify, resolv_conf
from harness.errors import HarnessError, UsageError
from harness.httpclient import Pool, Response, endpoint, request_bytes
from harness.model import ConnMode, Discovery, Traffic, check_mode, within
from harness.records import SKIPPED, UNFINISHED, RequestRecord
from harness.registryclient import RegistryError, connect

MAX_DURATION = 7 * 86400.0
"""Seconds: a week of load is the longest a schedule may be."""


@dataclass(frozen=True)
class LoadSpec:
    url: str
    rate: float = Traffic.rate
    """Scheduled requests per second (open loop: the schedule never waits for the server)."""
    duration: float = 10.0
    """Seconds of schedule; a rollout run stops the generator earlier, at the end of its tail."""
    mode: ConnMode = ConnMode.NEW
    max_requests: int | None = None
    max_in_flight: int = 2000
    """Requests in flight beyond this are recorded as `skipped`, never delayed (bounded memory and fds). `load`
    refuses a cap below in_flight_needed and, unless given one, raises this default to it (a run keeps it: its skipped
    requests make the run unreliable)."""
    connect_timeout: float = Traffic.connect_timeout
    read_timeout: float = Traffic.read_timeout
    connections: int = Traffic.connections
    """Mode keepalive: the pools the requests go to in turn. The defaults and why: harness.model.Traffic. One pool would
    hold one or two connections at 200/s, often to a single pod, and a drain of the other pods would then test nothing."""
    mux_connections: int = Traffic.mux_connections
    """Modes h2 and grpc: the connections (gRPC: channels) the streams go to in turn (harness.model.Traffic)."""
    discovery: Discovery = Discovery.SERVICE
    dns_cache: float = 0.0
    """Discovery dns: keep each answer this many seconds instead of its TTL (0: the TTL)."""
    registry_fetch: float = Traffic.registry_fetch
    """Discovery registry: seconds the client keeps the instances listed before it fetches them again."""
    authority: str = ""
    """The Host header (HTTP/2: :authority) to send instead of the URL's host[:port]: an ingress controller routes on
    it (`--via ingress`)."""

    def total(self) -> int:
        n = int(self.rate * self.duration)
        return min(n, self.max_requests) if self.max_requests is not None else n

    def in_flight_needed(self) -> int:
        """Requests in flight while a server stalls and every request waits out both timeouts: rate × (connect +
        read timeout). Under a lower cap a stall's timeouts become skipped requests, which say nothing of the server."""
        return math.ceil(self.rate * (self.connect_timeout + self.read_timeout))

    def validate(self) -> None:
        """UsageError naming the first setting out of its range."""
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"bad URL {self.url!r}: must start with http:// or https://")
        try:
            host = endpoint(self.url).host
        except ValueError as e:
            raise UsageError(f"bad URL {self.url!r}: {e}") from None
        if not host:
            raise UsageError(f"bad URL {self.url!r}: no host")
        if self.mode.multiplexed and self.url.startswith("https://"):
            raise UsageError(f"mode {self.mode.value} speaks cleartext HTTP/2 (prior knowledge): give an http:// URL")
        check_mode(self.mode, self.discovery)
        Traffic(
            self.rate,
            self.connect_timeout,
            self.read_timeout,
            self.connections,
            mux_connections=self.mux_connections,
            dns_cache=self.dns_cache,
            registry_fetch=self.registry_fetch,
        ).validate()
        within("duration", self.duration, 0, MAX_DURATION, "s", low_open=True)
        if self.max_in_flight < 1:
            raise UsageError("max in-flight must be at least 1")


@dataclass(frozen=True)
class LoadResult:
    t0_mono: float
    """time.monotonic() at the run's t0 (CLOCK_MONOTONIC is shared by every process on the host); record
    times are seconds after it, so the parent's event times compare with them exactly."""
    sent: int
    """Scheduled requests handled: sent, skipped or left unfinished (each has exactly one record)."""
    cpu_seconds: float
    wall_seconds: float

    @property
    def cpu_ms_per_1k(self) -> float:
        """Generator CPU per 1,000 scheduled requests, in ms."""
        return 1e6 * self.cpu_seconds / max(self.sent, 1)


Sink = Callable[[RequestRecord], None]


class Sender(Protocol):
    """One request's attempt in a mode: HTTP/1.1 pools, HTTP/2 connections or gRPC channels."""

    async def get(self, host: str, port: int, seq: int) -> Response:
        """Request `seq` to host:port; its response, or the exception harness.classify names."""
        ...

    async def aclose(self) -> None: ...


class _Http1:
    """Modes new and keepalive (harness.httpclient): one pool of new connections, or `connections` pools of kept ones,
    request i going to pool i mod n."""

    def __init__(self, spec: LoadSpec, request: bytes) -> None:
        keep = spec.mode is ConnMode.KEEPALIVE
        tls = ssl.create_default_context() if spec.url.startswith("https://") else None
        self.pools = [Pool(keep, spec.connect_timeout, spec.read_timeout, tls) for _ in range(spec.connections if keep else 1)]
        self.request = request

    async def get(self, host: str, port: int, seq: int) -> Response:
        return await self.pools[seq % len(self.pools)].get(host, port, self.request)

    async def aclose(self) -> None:
        for pool in self.pools:
            pool.close()


def sender(spec: LoadSpec) -> Sender:
    """The requests' attempts in spec's mode (also the serving gate's, harness.serving)."""
    url = endpoint(spec.url)
    path, authority = url.target, spec.authority or url.authority
    if spec.mode is ConnMode.H2:
        from harness.h2client import H2Pool  # imported here: h2 is not in the client pod's image, grpcio takes 0.2 s

        return H2Pool(spec.mux_connections, spec.connect_timeout, spec.read_timeout, authority, path)
    if spec.mode is ConnMode.GRPC:
        from harness.grpcclient import GrpcChannels

        return GrpcChannels(f"{url.host}:{url.port}", spec.mux_connections, spec.read_timeout)
    return _Http1(spec, request_bytes(path, authority))


@dataclass(frozen=True)
class _Target:
    """Where each request goes: an address (resolved once) or, with discovery dns or registry, the resolver's next pod
    IP (and the port its registry listed)."""

    host: str
    port: int
    resolver: Discoverer | None


def _target(spec: LoadSpec, resolver: Discoverer | None) -> _Target:
    url = endpoint(spec.url)
    host, port = url.host, url.port
    if resolver is None and not _is_ip(host) and spec.mode is not ConnMode.GRPC:
        try:  # once, as a client with a DNS cache would (aiohttp's was kept 300 s): the load measures the service
            host = str(socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
        except OSError as e:
            raise HarnessError(f"cannot resolve {url.host}: {e}") from None
    return _Target(host, port, resolver)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _one(
    sender: Sender, target: _Target, seq: int, sched: float, t0: float, sink: Sink, in_flight: dict[int, asyncio.Task[None]]
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time() - t0
    try:
        # discovery dns or registry: straight to a pod, the Host header keeps the name
        host, port = await target.resolver.next_endpoint(target.port) if target.resolver is not None else (target.host, target.port)
        resp = await sender.get(host, port, seq)
        kind = classify_status(resp.status)
        rec = RequestRecord(
            seq,
            sched,
            start,
            loop.time() - t0,
            kind.value,
            resp.status,
            resp.pod,
            resp.version,
            "" if kind is FailureKind.OK else f"HTTP {resp.status}",
        )
    except asyncio.CancelledError:
        sink(RequestRecord(seq, sched, start, loop.time() - t0, UNFINISHED, detail="still in flight when the load stopped"))
        raise
    except DnsError as e:
        rec = RequestRecord(seq, sched, start, loop.time() - t0, FailureKind.OTHER.value, detail=f"dns:{e}")
    except RegistryError as e:
        rec = RequestRecord(seq, sched, start, loop.time() - t0, FailureKind.OTHER.value, detail=f"registry:{e}")
    except Exception as exc:  # every transport failure is data, classified in one place
        rec = RequestRecord(seq, sched, start, loop.time() - t0, classify_exception(exc).value, detail=describe(exc))
    finally:
        del in_flight[seq]  # here rather than in a done callback: one callback less per request
    sink(rec)


async def _resolver(spec: LoadSpec) -> Discoverer | None:
    """Discovery dns: a resolver for the URL's host with its first answer in hand (the schedule must not start
    before the name resolves); registry: the same for the registry the URL names (harness.registryclient)."""
    if spec.discovery is Discovery.SERVICE:
        return None
    if spec.discovery is Discovery.REGISTRY:
        try:
            return await connect(spec.url, spec.registry_fetch)
        except RegistryError as e:
            raise HarnessError(f"--discovery registry: cannot list the instances at {spec.url}: {e}") from None
    host = endpoint(spec.url).host
    try:
        nameserver, domain = resolv_conf()
        resolver = Resolver(qualify(host, domain), nameserver, cache=spec.dns_cache)
        await resolver.answer()
    except (DnsError, OSError) as e:
        raise HarnessError(f"--discovery dns: cannot resolve {host}: {e}") from None
    return resolver


async def run_load(
    spec: LoadSpec, sink: Sink, stop: asyncio.Event | None = None, on_start: Callable[[float, float], None] | None = None
) -> LoadResult:
    """Send spec.total() requests at spec.rate, feeding each finished record to sink; on_start(t0_mono, keep) is
    called once the schedule's t0 is fixed, before the first request (keep: seconds the client may still call a gone
    pod: with discovery dns the time it keeps an answer, with registry the registry's expiry + the fetch interval;
    else 0)."""
    spec.validate()
    resolver = await _resolver(spec)
    target = _target(spec, resolver)
    loop = asyncio.get_running_loop()
    total = spec.total()
    interval = 1.0 / spec.rate
    cpu0 = time.process_time()
    in_flight: dict[int, asyncio.Task[None]] = {}
    requests = sender(spec)
    try:
        t0 = loop.time() + 0.02
        t0_mono = time.monotonic() + (t0 - loop.time())
        if on_start is not None:
            on_start(t0_mono, resolver.keep if resolver else 0.0)
        i = 0
        while i < total and not (stop is not None and stop.is_set()):
            now = loop.time()
            due = t0 + i * interval
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while i < total and t0 + i * interval <= now:
                sched = i * interval
                if len(in_flight) >= spec.max_in_flight:
                    sink(RequestRecord(i, sched, now - t0, now - t0, SKIPPED, detail="in-flight cap"))
                else:
                    in_flight[i] = asyncio.create_task(_one(requests, target, i, sched, t0, sink, in_flight))
                i += 1
        if in_flight:
            await asyncio.wait(set(in_flight.values()), timeout=spec.connect_timeout + spec.read_timeout + 5)
        left = set(in_flight.values())
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left)  # each cancelled request writes its `unfinished` record
        wall = loop.time() - t0
    finally:
        await requests.aclose()
    return LoadResult(t0_mono=t0_mono, sent=i, cpu_seconds=time.process_time() - cpu0, wall_seconds=wall)
