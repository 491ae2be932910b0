"""The probe app's gRPC server on GRPC_PORT: grpcio's asyncio server with one generic unary method,
`/probe.Probe/Get`, whose request and response are plain bytes (no generated code): the answer is
`POD\\nVERSION\\nPEER` (PEER: the client's address as gRPC names it, one per connection).

Behaviours, gRPC's own where it has them:
- MAX_CONN_AGE: `grpc.max_connection_age_ms` (gRPC adds ±10 % jitter, then sends GOAWAY and waits
  `grpc.max_connection_age_grace_ms`, CLOSE_GRACE here, for the open calls);
- SHUTDOWN=graceful: the server serves on through DRAIN_SECONDS (grpcio cannot send GOAWAY and keep listening, so
  DRAIN_CLOSE has no effect here), then `stop(grace)`: GOAWAY on every connection, the listener closed, the calls
  in flight given CLOSE_GRACE to end; immediate and ignore as for HTTP/1.1 (probe_app.app).

Imported by probe_app.app only when GRPC_PORT is set.
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from probe_app.app import Config, log

CLOSE_GRACE = 10.0
"""Seconds the calls in flight get to end once the server stops or a connection reaches its maximum age."""


class GrpcServer:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        options: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]
        if cfg.max_conn_age:
            options += [
                ("grpc.max_connection_age_ms", int(cfg.max_conn_age * 1000)),
                ("grpc.max_connection_age_grace_ms", int(CLOSE_GRACE * 1000)),
            ]
        self.server = grpc.aio.server(options=options)
        answer = f"{cfg.pod_name}\n{cfg.version}\n"

        async def get(_: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            if cfg.delay:
                await asyncio.sleep(cfg.delay)
            return (answer + context.peer()).encode()

        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(get)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("probe.Probe", {"Get": handler}),))

    async def start(self) -> None:
        if self.server.add_insecure_port(f"0.0.0.0:{self.cfg.grpc_port}") == 0:
            raise OSError(f"gRPC cannot listen on :{self.cfg.grpc_port}")
        await self.server.start()
        log(self.cfg, f"gRPC on :{self.cfg.grpc_port}, max connection age {self.cfg.max_conn_age or 'none'}")

    async def stop(self) -> None:
        """GOAWAY on every connection, the listener closed, the calls in flight given CLOSE_GRACE to end."""
        await self.server.stop(CLOSE_GRACE)
