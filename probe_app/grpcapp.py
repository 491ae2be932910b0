"""The probe app's gRPC server on GRPC_PORT: one unary method, `/probe.Probe/Get`, whose request and response are
plain bytes (no protobuf), served over the probe app's own HTTP/2 server (probe_app.h2app). The answer is
`POD\\nVERSION\\nPEER` (PEER: the client's address as gRPC names it, `ipv4:HOST:PORT`, one per connection).

gRPC over HTTP/2 (the gRPC project's PROTOCOL-HTTP2.md), as far as a unary call needs it: a POST to the method's path
with `content-type: application/grpc`; the answer is headers (:status 200), one length-prefixed message (a byte 0,
uncompressed, then the length in 4 bytes), and trailers with `grpc-status: 0`. Any other path gets grpc-status 12
(UNIMPLEMENTED) in a trailers-only answer. gRPC's clients speak this unchanged.

Why not grpcio's server: its `stop(grace)` announces GOAWAY and refuses new calls at the same moment, so a call the
client sent before it read the GOAWAY came back CANCELLED (1 call of ~1,800 on the cluster, docs/findings.md; 36 calls
in 43 drains on loopback). Served here, a connection closes as probe_app.h2app closes one, which RFC 9113 §6.8 asks of a
graceful close: GOAWAY(2^31-1), a second later GOAWAY(the last stream received), every stream up to it served to its
end. So MAX_CONN_AGE and SHUTDOWN=graceful (with DRAIN_CLOSE: GOAWAY at SIGTERM, and on each connection opened during
the drain after its first answer) behave as in HTTP/2, and no call the client started is refused.

Imported by probe_app.app only when GRPC_PORT is set.
"""

from __future__ import annotations

from probe_app.app import Config, State
from probe_app.h2app import Answer, H2Server, ServerConn

METHOD = b"/probe.Probe/Get"
OK, UNIMPLEMENTED = 0, 12
"""gRPC status codes."""
HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]


def message(payload: bytes) -> bytes:
    """One gRPC message on the wire: not compressed (0), its length (4 bytes, big-endian), itself."""
    return b"\x00" + len(payload).to_bytes(4) + payload


class GrpcServer(H2Server):
    name = "gRPC"

    def __init__(self, cfg: Config, state: State) -> None:
        super().__init__(cfg, state, cfg.grpc_port)

    def delayed(self, path: bytes) -> bool:
        return path == METHOD

    def answer(self, conn: ServerConn, path: bytes) -> Answer:
        if path != METHOD:
            return [*HEADERS, (b"grpc-status", str(UNIMPLEMENTED).encode())], None, None
        host, port = conn.transport.get_extra_info("peername")[:2] if conn.transport is not None else ("", 0)
        body = f"{self.cfg.pod_name}\n{self.cfg.version}\nipv4:{host}:{port}".encode()
        return HEADERS, message(body), [(b"grpc-status", str(OK).encode())]
