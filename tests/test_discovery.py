"""Client-side discovery: the DNS client against a real UDP server on loopback, and the generator's dns mode
against real HTTP listeners on loopback addresses (a gone pod is an address where nothing listens: refused)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from support import collect, free_port

from harness import discovery
from harness.discovery import DnsError, Resolver, lookup, parse, qualify, query, resolv_conf
from harness.load import LoadSpec
from harness.model import Discovery

Answers = Callable[[str], tuple[int, list[str], int | list[int]]]  # name -> (rcode, addresses, TTL or one per address)


class FakeDns(asyncio.DatagramProtocol):
    """Answers A queries on 127.0.0.1 from `answers`; counts the queries."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.queries = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        qid = struct.unpack("!H", data[:2])[0]
        end = data.index(b"\x00", 12) + 5
        question = data[12:end]
        labels, i = [], 0
        while question[i]:
            labels.append(question[i + 1 : i + 1 + question[i]].decode())
            i += 1 + question[i]
        rcode, addresses, ttl = self.answers(".".join(labels))
        head = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(addresses), 0, 0)
        ttls = ttl if isinstance(ttl, list) else [ttl] * len(addresses)
        rrs = b"".join(struct.pack("!HHHIH", 0xC00C, 1, 1, t, 4) + socket.inet_aton(a) for a, t in zip(addresses, ttls, strict=True))
        assert self.transport is not None
        self.transport.sendto(head + question + rrs, addr)


async def serve_dns(answers: Answers) -> tuple[FakeDns, int, asyncio.DatagramTransport]:
    proto = FakeDns(answers)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: proto, local_addr=("127.0.0.1", 0))
    return proto, int(transport.get_extra_info("sockname")[1]), transport


def test_resolv_conf_gives_the_first_nameserver_and_the_cluster_domain(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(
        "search ns1.svc.corp.example svc.corp.example corp.example\nnameserver 10.96.0.10\nnameserver 10.0.0.2\noptions ndots:5\n"
    )
    assert resolv_conf(conf) == ("10.96.0.10", "corp.example")
    conf.write_text("nameserver 10.96.0.10\n")
    assert resolv_conf(conf) == ("10.96.0.10", "cluster.local")
    conf.write_text("search x\n")
    with pytest.raises(DnsError, match="no nameserver"):
        resolv_conf(conf)
    assert qualify("web-pods.ns1.svc", "corp.example") == "web-pods.ns1.svc.corp.example"
    assert qualify("db.example.org", "corp.example") == "db.example.org"


def test_parse_rejects_errors_truncation_and_foreign_answers() -> None:
    q = query("a.b", 7)
    assert q[:2] == b"\x00\x07" and q.endswith(b"\x01a\x01b\x00\x00\x01\x00\x01")
    head = struct.pack("!HHHHHH", 7, 0x8183, 1, 0, 0, 0)
    with pytest.raises(DnsError, match="NXDOMAIN"):
        parse(head + q[12:], 7)
    with pytest.raises(DnsError, match="another query"):
        parse(struct.pack("!HHHHHH", 8, 0x8180, 1, 0, 0, 0) + q[12:], 7)
    with pytest.raises(DnsError, match="truncated"):
        parse(struct.pack("!HHHHHH", 7, 0x8380, 1, 0, 0, 0) + q[12:], 7)
    with pytest.raises(DnsError, match="no address"):
        parse(struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 0) + q[12:], 7)


@pytest.mark.integration
async def test_lookup_returns_every_address_and_the_smallest_ttl() -> None:
    proto, port, transport = await serve_dns(lambda name: (0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0))
    try:
        answer = await lookup("web-pods.ns.svc.cluster.local", "127.0.0.1", port)
        assert answer.addresses == ("10.0.0.1", "10.0.0.2", "10.0.0.3") and answer.ttl == 0
        proto.answers = lambda name: (0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"], [30, 5, 12])
        assert (await lookup("x.svc.cluster.local", "127.0.0.1", port)).ttl == 5
        proto.answers = lambda name: (3, [], 0)
        with pytest.raises(DnsError, match="NXDOMAIN"):
            await lookup("gone.svc.cluster.local", "127.0.0.1", port)
    finally:
        transport.close()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    with silent, pytest.raises(DnsError, match="timeout"):
        await lookup("x.svc.cluster.local", "127.0.0.1", silent.getsockname()[1], timeout=0.2)


@pytest.mark.integration
async def test_resolver_keeps_an_answer_for_its_ttl_or_the_cache_time_and_asks_once_at_a_time() -> None:
    proto, port, transport = await serve_dns(lambda name: (0, ["10.0.0.1", "10.0.0.2"], 1))
    try:
        r = Resolver("web-pods.ns.svc.cluster.local", "127.0.0.1", port)
        picks = await asyncio.gather(*(r.next_address() for _ in range(50)))
        assert proto.queries == 1 and r.keep == 1
        assert picks.count("10.0.0.1") == picks.count("10.0.0.2") == 25  # in turn
        await asyncio.sleep(0.6)
        await r.next_address()
        assert proto.queries == 1  # still fresh
        await asyncio.sleep(0.6)
        await r.next_address()
        assert proto.queries == 2  # expired after its 1 s TTL
        cached = Resolver("web-pods.ns.svc.cluster.local", "127.0.0.1", port, cache=3)
        await cached.next_address()
        await asyncio.sleep(1.2)
        await cached.next_address()
        assert cached.lookups == 1 and cached.keep == 3  # the client's cache time overrides the TTL
    finally:
        transport.close()


async def _http(host: str, port: int) -> web.AppRunner:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"X-Pod": host})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@pytest.mark.integration
@pytest.mark.parametrize("cache", [0.0, 2.0])
async def test_a_gone_address_is_called_until_the_answer_expires(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: float) -> None:
    """Known answer. DNS answers [127.0.0.2, 127.0.0.3] (TTL 1 s) for 1 s, then only 127.0.0.3; nothing listens on
    127.0.0.2 (a gone pod). Half the requests are refused until the client's answer expires: the TTL (1 s) or the
    client's own cache time (2 s) after the last lookup that still listed it; none after that."""
    port = free_port()
    t_switch = time.monotonic() + 1.0
    _proto, dns_port, transport = await serve_dns(
        lambda name: (0, ["127.0.0.2", "127.0.0.3"] if time.monotonic() < t_switch else ["127.0.0.3"], 1)
    )
    conf = tmp_path / "resolv.conf"
    conf.write_text("search ns.svc.cluster.local svc.cluster.local\nnameserver 127.0.0.1\n")
    monkeypatch.setattr(discovery, "RESOLV_CONF", conf)
    monkeypatch.setattr(discovery, "DNS_PORT", dns_port)
    runner = await _http("127.0.0.3", port)
    try:
        spec = LoadSpec(url=f"http://web-pods.ns.svc:{port}/", rate=200, duration=4.0, discovery=Discovery.DNS, dns_cache=cache)
        records, result = await collect(spec)
    finally:
        await runner.cleanup()
        transport.close()
    refused = [r for r in records if r.kind == "refused"]
    ok = [r for r in records if r.kind == "ok"]
    assert len(records) == result.sent == 800 and len(refused) + len(ok) == 800
    assert {r.pod for r in ok} == {"127.0.0.3"}
    keep = cache or 1.0
    t_last_listed = t_switch - (result.t0_mono)  # the last answer listing .2 came at most this long after t0
    assert len(refused) >= 80  # about half the requests of the first second at least
    assert max(r.start for r in refused) <= t_last_listed + keep + 0.1
    assert all(r.kind == "ok" for r in records if r.start > t_last_listed + keep + 0.1)
