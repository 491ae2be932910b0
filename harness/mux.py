"""The failures of a request sent as a stream on a shared connection (modes h2 and grpc), as the clients raise them
(harness.h2client, harness.grpcclient) and harness.classify names them. Plain exceptions: no HTTP/2 or gRPC library
is imported here, so classify (and everything that reads records) needs neither.

    StreamReset      the server reset this stream (RST_STREAM); its error code, e.g. REFUSED_STREAM, CANCEL
    GoawayRefused    the server said GOAWAY with a last stream id below this stream's: it never processed the request
    ConnectionLost   the connection closed (FIN, RST or a connection error) while this stream was open
    GrpcError        a gRPC call ended with a status other than OK; its code's name, e.g. UNAVAILABLE
"""

from __future__ import annotations


class StreamReset(Exception):
    """RST_STREAM from the server for this stream."""

    def __init__(self, code: str) -> None:
        super().__init__(f"stream reset by the server: {code}")
        self.code = code
        """The HTTP/2 error code's name (RFC 9113 §7: NO_ERROR, PROTOCOL_ERROR, ..., REFUSED_STREAM, CANCEL), or its
        number in hex when it has none."""


class GoawayRefused(Exception):
    """The server sent GOAWAY with a last stream id below this stream's id: by RFC 9113 §6.8 it did not and will not
    process this request. A client may resend it on a new connection (Go's net/http and gRPC do so on their own);
    this one does not: one attempt per request, what such a client hides is counted and named."""

    def __init__(self, code: str, last_stream_id: int) -> None:
        super().__init__(f"GOAWAY {code}, last stream {last_stream_id}: refused")
        self.code = code
        self.last_stream_id = last_stream_id


class ConnectionLost(ConnectionError):
    """The connection ended while this stream was open, before its response ended: the TCP connection closed (FIN
    or RST: the cause, if any, in __cause__), or the server closed it after a GOAWAY that covered this stream."""


class GrpcError(Exception):
    """A gRPC call's final status was not OK."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        """The status code's name: UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED, INTERNAL, ..."""
        self.details = details
