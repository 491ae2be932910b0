"""The gate before a measured window, one piece of code wherever the client runs: on the host (`wait_serving`), and in
the client pod, whose image holds this package (`python3 -m harness.serving URL TIMEOUT [POD,...]`, harness.clientpod).
No Kubernetes client here: the client image has none."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from harness.errors import ClusterError
from harness.httpclient import BadResponse, Pool, Response, endpoint, request_bytes
from harness.model import ConnMode
from harness.mux import ConnectionLost, GoawayRefused, GrpcError, StreamReset
from harness.waiting import wait_for

NOT_SERVING = (OSError, TimeoutError, BadResponse, StreamReset, GoawayRefused, ConnectionLost, GrpcError)

SERVING_STREAK = 20  # answers in a row, each on a new connection, before the measured window may start


def _once(url: str, mode: ConnMode, authority: str = "") -> tuple[Callable[[], Coroutine[Any, Any, Response]], Callable[[], None]]:
    """One request in `mode` on a new connection (HTTP/2: a new connection; gRPC: a new channel), and the clean-up;
    `authority`: the Host header instead of the URL's (harness.load.LoadSpec.authority)."""
    u = endpoint(url)
    host = u.host or "127.0.0.1"
    if not mode.multiplexed:
        pool = Pool(keep=False, connect_timeout=1.0, read_timeout=1.0)
        request = request_bytes(u.target, authority or u.authority)
        return (lambda: pool.get(host, u.port, request)), pool.close
    from harness.load import LoadSpec, sender  # modes h2 and grpc run from the host only (model.check_mode)

    spec = LoadSpec(url=url, mode=mode, mux_connections=1, connect_timeout=1.0, read_timeout=1.0, authority=authority)

    async def get() -> Response:
        s = sender(spec)
        try:
            return await s.get(host, u.port, 0)
        finally:
            await s.aclose()

    return get, lambda: None


async def wait_serving(
    url: str, timeout: float, pods: frozenset[str] = frozenset(), mode: ConnMode = ConnMode.NEW, authority: str = ""
) -> None:
    """The gate before a measured window: the Service must answer SERVING_STREAK times in a row, each on a new
    connection, 50 ms apart, and every pod in `pods` (the ready ones) must have answered through it (answers that
    name their pod in X-Pod; a workload whose answers name none is judged by the streak alone). Why both: kube-proxy
    programs a new endpoint up to a second or two after it is ready; a window that started before would send
    keep-alive connections only to the pods programmed so far, and new connections later to a pod that may not
    listen yet (e2e: a drain that removed no pod the load had reached; refusals in a naive StatefulSet's baseline).
    Modes h2 and grpc are asked in their own protocol (the Service's port then leads to the pods' HTTP/2 or gRPC port).
    Through an ingress controller (`authority`: the Host its route matches) the gate asks the controller, so the
    window starts once it routes to every ready pod."""
    get, close = _once(url, mode, authority)
    streak, seen, named = 0, set[str](), False

    async def probe() -> tuple[bool | None, str]:
        nonlocal streak, named
        try:
            resp = await get()
            streak, state = (streak + 1, "HTTP 200") if resp.status == 200 else (0, f"HTTP {resp.status}")
            if resp.pod:
                named = True
                seen.add(resp.pod)
        except NOT_SERVING as e:
            streak, state = 0, type(e).__name__
        missing = sorted(pods - seen) if named else []
        if missing:
            state += f"; not answered yet: {', '.join(missing)}"
        return (True if streak >= SERVING_STREAK and not missing else None), state

    try:
        await wait_for(probe, timeout=timeout, every=0.05, what=f"the Service at {url} answering steadily", error=ClusterError)
    finally:
        close()


Gate = Callable[[str, float, frozenset[str]], Coroutine[Any, Any, None]]


def main(argv: list[str], gate: Gate = wait_serving) -> int:
    """In the client pod: the gate (wait_serving, or another with its arguments: harness.registryclient.wait_listed)
    for URL within TIMEOUT seconds and the ready pods named (comma-separated); on failure its one line on stdout and
    exit 1."""
    url, timeout, pods = argv[0], float(argv[1]), frozenset(filter(None, (argv[2] if len(argv) > 2 else "").split(",")))
    try:
        asyncio.run(gate(url, timeout, pods))
    except ClusterError as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
