"""The generator's gRPC client (mode grpc): one unary call per scheduled request through grpcio's asyncio channel,
as a real gRPC client makes it: the channel resolves the target's name, connects, reconnects (with gRPC's backoff)
and follows GOAWAY by itself. The method is `/probe.Probe/Get` (the probe app serves it), request and response
plain bytes: no generated code, no protobuf. The response names the pod and its version (`POD\\nVERSION\\n...`).

Client settings, and why:
- `grpc.enable_retries` 1 (gRPC's default) and no service config, so no retry policy: a call is never resent once
  the server may have seen it. What stays on is gRPC's transparent retry, which every gRPC client has: it resends a
  call that never left the client or that the server refused unseen (a stream refused by a GOAWAY or REFUSED_STREAM).
  With it off, grpcio fails, unsent, a call it starts after it read a GOAWAY and before its channel moves on
  (UNAVAILABLE naming the GOAWAY): a race of the client library's own, which counted against best-practice × grpc
  in 1 rollout of 3 on 2026-12-04 (bench/paths.sh) though the server lost nothing, as no real client would see it.
- `grpc.use_local_subchannel_pool` 1: channels to one target in one process otherwise share their subchannel, one
  TCP connection; with a pool of its own each of the `connections` channels keeps its own connection, as that many
  client processes would. Calls go to channel i mod n.
- wait_for_ready off (gRPC's default): while a channel has no connection (TRANSIENT_FAILURE, backing off after a
  failed connect) a call fails at once with UNAVAILABLE instead of waiting for one.
- Each call's deadline is the read timeout (DEADLINE_EXCEEDED when no answer came within it, connecting included).
- Reconnect backoff, keepalive, load balancing (pick_first on the resolved addresses): gRPC's defaults, as a client
  that sets nothing has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from harness.http1 import Response
from harness.mux import GrpcError

METHOD = "/probe.Probe/Get"
OPTIONS = (("grpc.enable_retries", 1), ("grpc.use_local_subchannel_pool", 1))


class GrpcChannels:
    """`connections` channels to one target; request i is a call on channel i mod n."""

    def __init__(self, target: str, connections: int, read_timeout: float) -> None:
        """target: `host:port` (a name is resolved by gRPC itself)."""
        self.read_timeout = read_timeout
        self._channels = [grpc.aio.insecure_channel(target, options=OPTIONS) for _ in range(connections)]
        self._calls: list[Callable[..., Any]] = [ch.unary_unary(METHOD) for ch in self._channels]

    async def get(self, host: str, port: int, seq: int) -> Response:
        """One unary call (host and port: the channel's own target; they are there for the senders' common shape)."""
        try:
            body: bytes = await self._calls[seq % len(self._calls)](b"", timeout=self.read_timeout)
        except grpc.aio.AioRpcError as e:
            raise failure(e) from e
        pod, version, *_ = [*body.decode("latin-1").split("\n"), "", ""]
        return Response(200, pod, version)  # a gRPC answer comes with HTTP/2 :status 200; its status OK is the answer

    async def aclose(self) -> None:
        for ch in self._channels:
            await ch.close()


def failure(e: grpc.aio.AioRpcError) -> GrpcError:
    """The call's final status as the error harness.classify names."""
    return GrpcError(e.code().name, e.details() or "")
