"""Open-loop constant-rate HTTP load: each request starts at its scheduled time, whatever the server does.

Lateness (actual start - scheduled start) is recorded per request, so a generator that falls behind is
visible instead of silently lowering the rate (no coordinated omission). A cap on in-flight requests
keeps memory bounded; a request that would exceed it is recorded as `skipped`, never delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import yarl

from harness.classify import FailureKind, classify_exception, classify_status, describe
from harness.discovery import DnsError, Resolver, qualify, resolv_conf
from harness.errors import HarnessError, UsageError
from harness.records import SKIPPED, UNFINISHED, RequestRecord


class Discovery(StrEnum):
    SERVICE = "service"  # connect to the URL's host (a NodePort or a ClusterIP: kube-proxy picks the pod)
    DNS = "dns"  # resolve the URL's host (a headless Service) and connect to each pod IP in turn: harness.discovery


class ConnMode(StrEnum):
    NEW = "new"  # a new TCP connection per request
    KEEPALIVE = "keepalive"  # `connections` reused connections, requests spread over them in turn


@dataclass(frozen=True)
class LoadSpec:
    url: str
    rate: float = 200.0
    """Scheduled requests per second (open loop: the schedule never waits for the server)."""
    duration: float = 10.0
    """Seconds of schedule; a rollout run stops the generator earlier, at the end of its tail."""
    mode: ConnMode = ConnMode.NEW
    max_requests: int | None = None
    max_in_flight: int = 2000
    """Requests in flight beyond this are recorded as `skipped`, never delayed (bounded memory and fds)."""
    connect_timeout: float = 3.0
    """3 s: Linux retransmits a lost SYN after 1 s, so a client that gives up sooner counts one lost packet on a
    loaded 2-core machine as a failure. Most HTTP clients' connect timeouts are longer still."""
    read_timeout: float = 5.0
    """Seconds from connect to the whole response; a hung backend shows as read_timeout."""
    connections: int = 16
    """Keep-alive mode: requests go to this many connection pools in turn, so this many connections stay open
    (more while requests overlap), each to a pod kube-proxy picked when it was opened. One pool would hold one
    or two connections at 200/s, often to a single pod, and a drain of the other pods would then test nothing:
    with 16 and 3 pods, a given pod holds none with probability (2/3)^16 = 0.15 %. Unused in `new` mode."""
    discovery: Discovery = Discovery.SERVICE
    dns_cache: float = 0.0
    """Discovery dns: keep each answer this many seconds instead of its TTL (0: the TTL)."""

    def total(self) -> int:
        n = int(self.rate * self.duration)
        return min(n, self.max_requests) if self.max_requests is not None else n

    def validate(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise UsageError(f"bad URL {self.url!r}: must start with http://")
        try:
            host = yarl.URL(self.url).host
        except ValueError as e:
            raise UsageError(f"bad URL {self.url!r}: {e}") from None
        if not host:
            raise UsageError(f"bad URL {self.url!r}: no host")
        if not 0 < self.rate <= 100_000:
            raise UsageError(f"bad rate {self.rate}: must be in (0, 100000] requests/s")
        if self.duration <= 0:
            raise UsageError("duration must be positive")
        if self.max_in_flight < 1:
            raise UsageError("max in-flight must be at least 1")
        if not 1 <= self.connections <= 1000:
            raise UsageError(f"bad connections {self.connections}: must be in [1, 1000]")
        if not 0 <= self.dns_cache <= 3600:
            raise UsageError(f"bad DNS cache time {self.dns_cache}: must be in [0, 3600] s")


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


def check_client() -> None:
    """aiohttp silently resends an idempotent request once after a reset; only aiohttp >= 3.11 has the (private)
    switch that turns it off. Without it resets during a rollout are hidden, so refuse to run."""
    if "_retry_connection" not in aiohttp.ClientSession.ATTRS:
        raise UsageError(f"aiohttp {aiohttp.__version__} cannot disable its silent retry; rollout-harness needs aiohttp>=3.11,<4")


def _session(spec: LoadSpec) -> aiohttp.ClientSession:
    keep = spec.mode is ConnMode.KEEPALIVE
    connector = aiohttp.TCPConnector(
        limit=0, force_close=not keep, keepalive_timeout=30 if keep else None, ttl_dns_cache=300, enable_cleanup_closed=False
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=spec.connect_timeout, sock_read=spec.read_timeout)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        raise_for_status=False,
    )
    # aiohttp silently resends an idempotent request once after a reset or disconnect; one scheduled
    # request must be one attempt, or resets during a rollout are hidden. No public switch exists.
    session._retry_connection = False
    return session


async def _one(
    session: aiohttp.ClientSession, url: yarl.URL, seq: int, sched: float, t0: float, sink: Sink, resolver: Resolver | None
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time() - t0
    headers = None
    try:
        if resolver is not None:  # straight to a pod: the URL keeps its port and path, the Host header its name
            headers = {"Host": url.raw_authority}
            url = url.with_host(await resolver.next_address())
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            kind = classify_status(resp.status)
            rec = RequestRecord(
                seq,
                sched,
                start,
                loop.time() - t0,
                kind.value,
                resp.status,
                resp.headers.get("X-Pod", ""),
                resp.headers.get("X-Version", ""),
                "" if kind is FailureKind.OK else f"HTTP {resp.status}",
            )
    except asyncio.CancelledError:
        sink(RequestRecord(seq, sched, start, loop.time() - t0, UNFINISHED, detail="still in flight when the load stopped"))
        raise
    except DnsError as e:
        rec = RequestRecord(seq, sched, start, loop.time() - t0, FailureKind.OTHER.value, detail=f"dns:{e}")
    except Exception as exc:  # every transport failure is data, classified in one place
        rec = RequestRecord(seq, sched, start, loop.time() - t0, classify_exception(exc).value, detail=describe(exc))
    sink(rec)


async def _resolver(spec: LoadSpec) -> Resolver | None:
    """Discovery dns: a resolver for the URL's host with its first answer in hand (the schedule must not start
    before the name resolves)."""
    if spec.discovery is Discovery.SERVICE:
        return None
    host = yarl.URL(spec.url).host or ""
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
    called once the schedule's t0 is fixed, before the first request (keep: seconds the client keeps a DNS answer
    with discovery dns, else 0)."""
    spec.validate()
    check_client()
    resolver = await _resolver(spec)
    url = yarl.URL(spec.url)
    loop = asyncio.get_running_loop()
    total = spec.total()
    interval = 1.0 / spec.rate
    cpu0 = time.process_time()
    in_flight: set[asyncio.Task[None]] = set()
    pools = spec.connections if spec.mode is ConnMode.KEEPALIVE else 1
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(_session(spec)) for _ in range(pools)]
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
                    task = asyncio.create_task(_one(sessions[i % pools], url, i, sched, t0, sink, resolver))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                i += 1
        if in_flight:
            await asyncio.wait(set(in_flight), timeout=spec.connect_timeout + spec.read_timeout + 5)
        for task in list(in_flight):
            task.cancel()
        if in_flight:
            await asyncio.wait(set(in_flight))  # each cancelled request writes its `unfinished` record
        wall = loop.time() - t0
    return LoadResult(t0_mono=t0_mono, sent=i, cpu_seconds=time.process_time() - cpu0, wall_seconds=wall)
