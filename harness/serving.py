"""The gate before a measured window, one piece of code wherever the client runs: on the host (`wait_serving`), and in
the client pod, whose image holds this package (`python3 -m harness.serving URL TIMEOUT [POD,...]`, harness.clientpod).
No Kubernetes client here: the client image has none."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from harness.errors import ClusterError
from harness.httpclient import BadResponse, Pool, endpoint, request_bytes
from harness.waiting import wait_for

SERVING_STREAK = 20  # answers in a row, each on a new connection, before the measured window may start


async def wait_serving(url: str, timeout: float, pods: frozenset[str] = frozenset()) -> None:
    """The gate before a measured window: the Service must answer SERVING_STREAK times in a row, each on a new
    connection, 50 ms apart, and every pod in `pods` (the ready ones) must have answered through it (answers that
    name their pod in X-Pod; a workload whose answers name none is judged by the streak alone). Why both: kube-proxy
    programs a new endpoint up to a second or two after it is ready; a window that started before would send
    keep-alive connections only to the pods programmed so far, and new connections later to a pod that may not
    listen yet (e2e: a drain that removed no pod the load had reached; refusals in a naive StatefulSet's baseline)."""
    u = endpoint(url)
    host, port, request = u.host or "127.0.0.1", u.port, request_bytes(u.target, u.authority)
    pool = Pool(keep=False, connect_timeout=1.0, read_timeout=1.0)
    streak, seen, named = 0, set[str](), False

    async def probe() -> tuple[bool | None, str]:
        nonlocal streak, named
        try:
            resp = await pool.get(host, port, request)
            streak, state = (streak + 1, "HTTP 200") if resp.status == 200 else (0, f"HTTP {resp.status}")
            if resp.pod:
                named = True
                seen.add(resp.pod)
        except (OSError, TimeoutError, BadResponse) as e:
            streak, state = 0, type(e).__name__
        missing = sorted(pods - seen) if named else []
        if missing:
            state += f"; not answered yet: {', '.join(missing)}"
        return (True if streak >= SERVING_STREAK and not missing else None), state

    try:
        await wait_for(probe, timeout=timeout, every=0.05, what=f"the Service at {url} answering steadily", error=ClusterError)
    finally:
        pool.close()


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
