"""Every FailureKind produced by a real socket condition, through the real load generator.

Loopback cases use 127.0.0.1 servers in a thread. Cases that need routing (no_route, a peer that drops
SYNs) run the load generator inside a network namespace this module creates and deletes:

    rhtest-<pid>-c (client, 10.213.N.1/30) ==veth== rhtest-<pid>-p (peer, 10.213.N.2/30)

The client namespace has only the veth subnet plus unreachable / blackhole / prohibit routes, so no
packet ever leaves the two namespaces.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from support import RawServer, collect, free_port, hold, reset, respond

from harness.classify import FAILURE_KINDS, LOST, TIMER_KINDS, FailureKind, classify_exception, classify_status
from harness.httpclient import ConnectError, ConnectTimeout, IdleClosed, Pool, ServerDisconnected, endpoint, request_bytes
from harness.load import LoadResult, LoadSpec
from harness.model import ConnMode
from harness.records import RequestRecord, read_records

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


# --- loopback ---------------------------------------------------------------------------------------


def spec(url: str, n: int = 10, **kw: Any) -> LoadSpec:
    """n requests at 20 req/s with short timeouts."""
    return LoadSpec(
        url=url,
        rate=20.0,
        duration=n / 20.0,
        connect_timeout=kw.pop("connect_timeout", 0.5),
        read_timeout=kw.pop("read_timeout", 0.3),
        **kw,
    )


def kinds(records: list[RequestRecord]) -> set[str]:
    return {r.kind for r in records}


async def test_closed_port_is_refused() -> None:
    records, result = await collect(spec(f"http://127.0.0.1:{free_port()}/"))
    assert result.sent == len(records) == 10
    assert kinds(records) == {"refused"}
    assert {r.detail for r in records} == {"ConnectError:ECONNREFUSED"}
    assert all(r.status == 0 for r in records)


async def test_the_schedule_gives_every_request_one_record_caps_in_flight_and_stops(raw_server: Callable[..., RawServer]) -> None:
    """The open-loop schedule: request i is due at i/rate and has exactly one record; over the in-flight cap a due
    request is recorded `skipped`, not sent; a set stop event ends the schedule at its next due request."""
    import asyncio

    from harness.load import run_load

    server = raw_server(hold)
    records, result = await collect(spec(server.url, max_in_flight=3, read_timeout=1.0))
    assert result.sent == len(records) == 10 and [r.seq for r in records] == list(range(10))
    assert all(r.sched == pytest.approx(r.seq / 20) and r.start >= r.sched - 1e-6 for r in records)
    assert [r.kind for r in records] == ["read_timeout"] * 3 + ["skipped"] * 7 and server.accepted == 3

    ok = raw_server(respond(200, "OK"))
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.32, stop.set)
    got: list[RequestRecord] = []
    t = time.monotonic()
    result = await run_load(spec(ok.url, n=100), got.append, stop)
    assert time.monotonic() - t < 1.5 and result.sent == len(got) and 6 <= len(got) <= 8
    assert kinds(got) == {"ok"} and max(r.sched for r in got) < 0.4


@pytest.mark.parametrize("read_first", [True, False], ids=["after-request", "at-accept"])
async def test_rst_is_reset(raw_server: Callable[..., RawServer], read_first: bool) -> None:
    server = raw_server(reset(read_first))
    records, _ = await collect(spec(server.url))
    assert server.accepted == len(records) == 10
    assert kinds(records) == {"reset"}, {r.detail for r in records}


async def test_silent_server_is_read_timeout(raw_server: Callable[..., RawServer]) -> None:
    server = raw_server(hold)
    records, _ = await collect(spec(server.url, read_timeout=0.3))
    assert server.accepted == len(records) == 10
    assert kinds(records) == {"read_timeout"}
    assert all(0.25 <= r.latency < 1.0 for r in records), [r.latency for r in records]


async def test_full_accept_queue_is_connect_timeout() -> None:
    """Linux drops SYNs to a listener whose accept queue is full: connect() never completes."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener, socket.socket() as filler:
        port = listener.getsockname()[1]
        filler.settimeout(1.0)
        filler.connect(("127.0.0.1", port))  # the only slot of the accept queue
        records, _ = await collect(spec(f"http://127.0.0.1:{port}/", n=5, connect_timeout=0.3))
    assert kinds(records) == {"connect_timeout"}
    assert all(0.25 <= r.latency < 1.0 for r in records), [r.latency for r in records]


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (200, "OK", "ok"),
        (201, "Created", "ok"),
        (503, "Service Unavailable", "http_5xx"),
        (500, "Internal Server Error", "http_5xx"),
        (404, "Not Found", "http_other"),
        (429, "Too Many Requests", "http_other"),
    ],
)
async def test_http_status(raw_server: Callable[..., RawServer], status: int, reason: str, kind: str) -> None:
    server = raw_server(respond(status, reason, {"X-Pod": "web-1", "X-Version": "v2"}))
    records, _ = await collect(spec(server.url, n=4))
    assert [(r.kind, r.status) for r in records] == [(kind, status)] * 4
    assert {(r.pod, r.version) for r in records} == {("web-1", "v2")}
    assert {r.detail for r in records} == ({""} if kind == "ok" else {f"HTTP {status}"})


async def test_keepalive_mode_honours_connection_close(raw_server: Callable[..., RawServer]) -> None:
    """A pooled client must not count a server's `Connection: close` as a failure."""
    server = raw_server(respond(200, "OK"))
    records, _ = await collect(LoadSpec(url=server.url, rate=20.0, duration=0.5, mode=ConnMode.KEEPALIVE))
    assert kinds(records) == {"ok"}
    assert server.accepted == len(records) == 10


async def _one_exception(url: str, connect: float = 0.5, read: float = 0.3) -> BaseException:
    u = endpoint(url)
    pool = Pool(keep=False, connect_timeout=connect, read_timeout=read)
    try:
        await pool.get(u.host, u.port, request_bytes(u.target, u.authority))
    except Exception as exc:
        return exc
    finally:
        pool.close()
    raise AssertionError(f"GET {url} did not fail")


async def test_classify_exception_directly(raw_server: Callable[..., RawServer]) -> None:
    exc = await _one_exception(f"http://127.0.0.1:{free_port()}/")
    assert isinstance(exc, ConnectError)
    assert classify_exception(exc) is FailureKind.REFUSED
    exc = await _one_exception(raw_server(hold).url)
    assert isinstance(exc, TimeoutError) and not isinstance(exc, ConnectTimeout)
    assert classify_exception(exc) is FailureKind.READ_TIMEOUT
    exc = await _one_exception(raw_server(reset(read_first=True)).url)
    assert classify_exception(exc) is FailureKind.RESET


def test_idle_close_is_lost_named_everywhere_and_no_timer_kind() -> None:
    """idle_close sits next to reset, counts as lost, is evidence a stall cannot fake, and every table and
    picture that lists kinds has a name and a colour for it (and for every other kind)."""
    from harness.plot import KIND_COLORS
    from harness.report import SHORT

    kinds = [k.value for k in FAILURE_KINDS]
    assert kinds.index("idle_close") == kinds.index("reset") + 1
    assert "idle_close" in LOST and FailureKind.IDLE_CLOSE not in TIMER_KINDS
    assert set(SHORT) == set(kinds) and set(KIND_COLORS) == {"ok", *kinds}
    assert len(set(KIND_COLORS.values())) == len(KIND_COLORS)
    cut = IdleClosed("closed")
    cut.__cause__ = ConnectionResetError(errno.ECONNRESET, "reset by peer")
    assert classify_exception(cut) is FailureKind.IDLE_CLOSE  # the errno does not make it a reset
    assert classify_exception(ServerDisconnected("closed")) is FailureKind.RESET


def test_classify_status_boundaries() -> None:
    assert [classify_status(s) for s in (200, 302, 399, 400, 499, 500, 599)] == [
        FailureKind.OK,
        FailureKind.OK,
        FailureKind.OK,
        FailureKind.HTTP_OTHER,
        FailureKind.HTTP_OTHER,
        FailureKind.HTTP_5XX,
        FailureKind.HTTP_5XX,
    ]


# --- network namespaces -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Netns:
    client: str
    peer: str
    net: int  # N in 10.213.N.0/30 and in the routed test prefixes

    @property
    def peer_ip(self) -> str:
        return f"10.213.{self.net}.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _in(ns: str, *cmd: str) -> None:
    _ip("netns", "exec", ns, *cmd)


def _remove_stale_namespaces() -> None:
    """Delete namespaces left behind by a killed test run (their pid no longer exists)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False).stdout
    for line in listed.splitlines():
        m = re.match(r"(rhtest-(\d+)-[cp])\b", line)
        if m and not Path(f"/proc/{m[2]}").exists():
            subprocess.run(["ip", "netns", "del", m[1]], capture_output=True, timeout=10, check=False)


@pytest.fixture(scope="module")
def netns() -> Iterator[Netns]:
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        pytest.skip("needs root, iproute2 and iptables for network namespaces")
    _remove_stale_namespaces()
    pid = os.getpid()
    ns = Netns(f"rhtest-{pid}-c", f"rhtest-{pid}-p", pid % 250 + 1)
    veth_c, veth_p = f"rhc{pid}", f"rhp{pid}"
    try:
        _ip("netns", "add", ns.client)
        _ip("netns", "add", ns.peer)
        _ip("link", "add", veth_c, "netns", ns.client, "type", "veth", "peer", "name", veth_p, "netns", ns.peer)
        for name, dev, host in ((ns.client, veth_c, 1), (ns.peer, veth_p, 2)):
            _ip("-n", name, "addr", "add", f"10.213.{ns.net}.{host}/30", "dev", dev)
            _ip("-n", name, "link", "set", dev, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        for kind, prefix in (("unreachable", 214), ("blackhole", 215), ("prohibit", 216)):
            _ip("-n", ns.client, "route", "add", kind, f"10.{prefix}.{ns.net}.0/24")
        rules = [
            ("80", "DROP"),
            ("82", "REJECT --reject-with icmp-host-unreachable"),
            ("83", "REJECT --reject-with icmp-admin-prohibited"),
            ("86", "REJECT --reject-with icmp-port-unreachable"),
        ]
        # the kernel rate-limits ICMP errors per destination (1/s after a burst of 6): without this, most
        # rejects in a burst are never sent and the client sees connect timeouts instead
        _in(ns.peer, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        for port, target in rules:
            _in(ns.peer, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", port, "-j", *target.split())
        yield ns
    finally:
        for name in (ns.client, ns.peer):  # deleting a namespace deletes its end of the veth pair
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10, check=False)


_PEER_HTTP = """
import http.server, sys
srv = http.server.HTTPServer((sys.argv[1], 8080), http.server.SimpleHTTPRequestHandler)
print("ready", flush=True)
srv.serve_forever()
"""


def _start_worker(ns: str, spec: LoadSpec, records: Path) -> subprocess.Popen[str]:
    """harness.loadworker's child (the production one), inside namespace `ns`; its stdin is held open, since
    closing it would ask the child to stop before spec.duration."""
    cmd = [sys.executable, "-m", "harness.loadworker", json.dumps(asdict(spec) | {"mode": spec.mode.value}), str(records)]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, *cmd], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None
    proc.stdin.write("go\n")  # its schedule starts (see harness.loadworker)
    proc.stdin.flush()
    return proc


@pytest.fixture(scope="module")
def netns_records(netns: Netns, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[RequestRecord]]]:
    """One load-worker child per target in the client namespace, all at once (5 requests each)."""
    n, peer = netns.net, netns.peer_ip
    targets = {
        "ok-control": f"http://{peer}:8080/",
        "connect_timeout-syn-dropped": f"http://{peer}:80/",
        "refused-closed-port": f"http://{peer}:81/",
        "refused-icmp-port-unreachable": f"http://{peer}:86/",
        "no_route-icmp-host-unreachable": f"http://{peer}:82/",
        "no_route-icmp-admin-prohibited": f"http://{peer}:83/",
        "no_route-unreachable-route": f"http://10.214.{n}.5/",
        "no_route-no-route-at-all": f"http://10.217.{n}.5/",
        "blackhole-route": f"http://10.215.{n}.5/",
        "prohibit-route": f"http://10.216.{n}.5/",
    }
    specs = {name: LoadSpec(url=url, rate=20.0, duration=0.25, connect_timeout=0.3, read_timeout=0.5) for name, url in targets.items()}
    cwd = tmp_path_factory.mktemp("peer-www")
    (cwd / "index.html").write_text("hello\n")
    out = tmp_path_factory.mktemp("records")
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns.peer, sys.executable, "-c", _PEER_HTTP, peer],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    workers: dict[str, subprocess.Popen[str]] = {}
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 10)
        assert ready and server.stdout.readline() == b"ready\n", "peer HTTP server did not start"
        workers = {name: _start_worker(netns.client, s, out / f"{name}.jsonl") for name, s in specs.items()}
        deadline = time.monotonic() + 15
        results: dict[str, list[RequestRecord]] = {}
        for name, proc in workers.items():
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))  # ends on its own after spec.duration
            stdout, stderr = proc.communicate(timeout=10)
            assert proc.returncode == 0, stderr
            assert LoadResult(**json.loads(stdout.splitlines()[-1])).sent == 5, stdout
            results[name] = sorted(read_records(out / f"{name}.jsonl"), key=lambda r: r.seq)
        yield results
    finally:
        for proc in workers.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        server.kill()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


@pytest.mark.parametrize(
    ("target", "kind", "detail"),
    [
        ("ok-control", "ok", ""),
        ("connect_timeout-syn-dropped", "connect_timeout", "ConnectTimeout"),
        ("refused-closed-port", "refused", "ConnectError:ECONNREFUSED"),
        ("refused-icmp-port-unreachable", "refused", "ConnectError:ECONNREFUSED"),
        ("no_route-icmp-host-unreachable", "no_route", "ConnectError:EHOSTUNREACH"),
        ("no_route-icmp-admin-prohibited", "no_route", "ConnectError:EHOSTUNREACH"),
        ("no_route-unreachable-route", "no_route", "ConnectError:EHOSTUNREACH"),
        ("no_route-no-route-at-all", "no_route", "ConnectError:ENETUNREACH"),
    ],
)
def test_netns_condition(netns_records: dict[str, list[RequestRecord]], target: str, kind: str, detail: str) -> None:
    records = netns_records[target]
    assert len(records) == 5
    assert {(r.kind, r.detail) for r in records} == {(kind, detail)}


@pytest.mark.parametrize(("target", "errno_name"), [("blackhole-route", "EINVAL"), ("prohibit-route", "EACCES")])
def test_local_reject_routes_fail_with_their_errno(netns_records: dict[str, list[RequestRecord]], target: str, errno_name: str) -> None:
    """A blackhole route fails connect() with EINVAL and a prohibit route with EACCES: counted, errno kept."""
    records = netns_records[target]
    assert len(records) == 5
    assert all(r.failed for r in records)
    assert {r.detail for r in records} == {f"ConnectError:{errno_name}"}


@pytest.mark.parametrize("connections", [1, 4])
async def test_keepalive_mode_spreads_requests_over_its_connections(connections: int) -> None:
    """Keep-alive mode holds `connections` connections and sends the requests over them in turn, so through a
    Service each pod is likely to hold one (one pool alone reuses a single connection at a low rate)."""
    from aiohttp import web

    peers: list[tuple[str, int]] = []

    async def handle(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else ("", 0))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        records, _ = await collect(
            LoadSpec(url=f"http://127.0.0.1:{port}/", rate=40.0, duration=1.0, mode=ConnMode.KEEPALIVE, connections=connections)
        )
    finally:
        await runner.cleanup()
    assert kinds(records) == {"ok"} and len(records) == 40
    by_seq = sorted(records, key=lambda r: r.seq)
    # a pool opens another connection only when its previous request is still in flight (a stalled test machine)
    overlapped = any(r.start < by_seq[r.seq - connections].end for r in by_seq[connections:])
    if overlapped:
        assert len(set(peers)) >= connections
    else:
        assert len(set(peers)) == connections
        assert [peers.count(p) for p in dict.fromkeys(peers)] == [40 // connections] * connections
