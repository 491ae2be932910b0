"""The one place that maps a transport exception or an HTTP status to a FailureKind.

Transport failures stay apart from HTTP status codes: a refused connect is `refused`, never `http_5xx`.

`idle_close` is kept apart from `reset`: it is the one failure a common client would have hidden by itself (it
resends an idempotent request when a reused connection closes before any byte of the response), and it needs no
rollout at all: a server whose keep-alive idle timeout is shorter than the gaps between requests on one connection
produces it now and then in steady state, in the baseline as much as in the window. It still counts as lost (a
client without that retry sees it) and it is not a timer kind: the server's idle timeout is a property of the
workload, and a stalled generator cannot make it up (a close that arrived during a stall is read before the
connection is reused).
"""

from __future__ import annotations

import asyncio
import errno
from enum import StrEnum

from harness.httpclient import ConnectTimeout, IdleClosed, ServerDisconnected
from harness.mux import ConnectionLost, GoawayRefused, GrpcError, StreamReset


class FailureKind(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    NO_ROUTE = "no_route"
    RESET = "reset"
    """RST or close on a new connection, or on any connection once the response began."""
    IDLE_CLOSE = "idle_close"
    """The server closed (FIN or RST) a reused keep-alive connection after the request was written and before any
    byte of the response. Many clients resend the request on a new connection then: Go net/http (idempotent or
    replayable requests), urllib3 with its default Retry (idempotent methods; `requests` sets its retries to 0 and
    does not), curl (any request whose reused connection died before a byte came back), browsers. This generator
    does not: one attempt, so what such a client would have hidden is counted here, and named."""
    STREAM_RESET = "stream_reset"
    """h2: the server reset the request's stream (RST_STREAM); the detail names its error code (StreamReset:CANCEL)."""
    GOAWAY = "goaway"
    """h2: the server sent GOAWAY with a last stream id below the request's: it refused the request unprocessed. Go's
    net/http and gRPC resend such a request on a new connection by themselves; this generator does not (one attempt),
    so what they would hide is counted here, and named, as idle_close is."""
    CONN_LOST = "conn_lost"
    """h2: the connection closed (FIN or RST, the detail says which) while the request's stream was open."""
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    HTTP_5XX = "http_5xx"
    HTTP_OTHER = "http_other"
    GRPC_UNAVAILABLE = "grpc_unavailable"
    """grpc: status UNAVAILABLE (no connection, or it was lost or refused the call); the detail names the cause gRPC
    gave (GrpcError:UNAVAILABLE:ECONNREFUSED)."""
    GRPC_DEADLINE = "grpc_deadline"
    """grpc: status DEADLINE_EXCEEDED: no answer within the read timeout, the call's deadline (a timer kind)."""
    GRPC_OTHER = "grpc_other"
    """grpc: any other status but OK (CANCELLED, INTERNAL, UNKNOWN, ...), named in the detail."""
    OTHER = "other"
    CLIENT_ERROR = "client_error"  # the generator itself ran out of something (fds, ports, memory): not the service


# What counts as a lost request. CLIENT_ERROR is left out: it says the client was broken, not the service, and
# makes the run unreliable instead.
FAILURE_KINDS: tuple[FailureKind, ...] = tuple(k for k in FailureKind if k not in (FailureKind.OK, FailureKind.CLIENT_ERROR))
LOST = frozenset(k.value for k in FAILURE_KINDS)  # the same as values, for membership tests on record kinds
# Failures a stalled generator can fake (its timer fires late); refused, reset, idle_close, no_route, the stream
# kinds, HTTP codes and gRPC statuses other than DEADLINE_EXCEEDED it cannot.
TIMER_KINDS = frozenset({FailureKind.CONNECT_TIMEOUT, FailureKind.READ_TIMEOUT, FailureKind.GRPC_DEADLINE})

_ERRNO_KIND = {
    errno.ECONNREFUSED: FailureKind.REFUSED,
    errno.EHOSTUNREACH: FailureKind.NO_ROUTE,
    errno.ENETUNREACH: FailureKind.NO_ROUTE,
    errno.ECONNRESET: FailureKind.RESET,
    errno.EPIPE: FailureKind.RESET,
    errno.ECONNABORTED: FailureKind.RESET,
    errno.ETIMEDOUT: FailureKind.CONNECT_TIMEOUT,
    errno.EMFILE: FailureKind.CLIENT_ERROR,
    errno.ENFILE: FailureKind.CLIENT_ERROR,
    errno.EADDRNOTAVAIL: FailureKind.CLIENT_ERROR,
    errno.EADDRINUSE: FailureKind.CLIENT_ERROR,
    errno.ENOBUFS: FailureKind.CLIENT_ERROR,
    errno.ENOMEM: FailureKind.CLIENT_ERROR,
}


def classify_status(status: int) -> FailureKind:
    if 200 <= status < 400:
        return FailureKind.OK
    if status >= 500:
        return FailureKind.HTTP_5XX
    return FailureKind.HTTP_OTHER


def _errno_of(exc: BaseException) -> int | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno is not None:
            return cur.errno
        cur = cur.__cause__ or cur.__context__
    return None


def classify_exception(exc: BaseException) -> FailureKind:
    """Most specific FailureKind for a client-side exception raised while sending one request."""
    if isinstance(exc, ConnectTimeout):
        return FailureKind.CONNECT_TIMEOUT
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return FailureKind.READ_TIMEOUT
    if isinstance(exc, IdleClosed):  # before the errno: an RST that closed an idle connection is still idle_close
        return FailureKind.IDLE_CLOSE
    if isinstance(exc, ConnectionLost):  # before the errno too: an RST under an open stream is a lost connection
        return FailureKind.CONN_LOST
    if isinstance(exc, StreamReset):
        return FailureKind.STREAM_RESET
    if isinstance(exc, GoawayRefused):
        return FailureKind.GOAWAY
    if isinstance(exc, GrpcError):
        return _GRPC_KIND.get(exc.code, FailureKind.GRPC_OTHER)
    code = _errno_of(exc)
    if code in _ERRNO_KIND:
        return _ERRNO_KIND[code]
    if isinstance(exc, ServerDisconnected):
        return FailureKind.RESET
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return FailureKind.RESET
    if isinstance(exc, ConnectionRefusedError):
        return FailureKind.REFUSED
    return FailureKind.OTHER


_GRPC_KIND = {"UNAVAILABLE": FailureKind.GRPC_UNAVAILABLE, "DEADLINE_EXCEEDED": FailureKind.GRPC_DEADLINE}

# What gRPC's details say of an UNAVAILABLE call's cause (the C core's words, e.g. "failed to connect to all
# addresses; last error: UNKNOWN: ipv4:127.0.0.1:4: Failed to connect to remote host: Connection refused"), first
# match wins; read here only.
_GRPC_CAUSES = (
    ("connection refused", "ECONNREFUSED"),
    ("no route to host", "EHOSTUNREACH"),
    ("network is unreachable", "ENETUNREACH"),
    ("connection reset", "ECONNRESET"),
    ("goaway", "GOAWAY"),
    ("timeout occurred", "connect_timeout"),
    ("socket closed", "closed"),
    ("connection closed", "closed"),
    ("broken pipe", "EPIPE"),
)


def grpc_cause(details: str) -> str:
    """The cause a gRPC status's details name, in one word (ECONNREFUSED, GOAWAY, closed, ...); "" if none known."""
    low = details.lower()
    return next((word for text, word in _GRPC_CAUSES if text in low), "")


def describe(exc: BaseException) -> str:
    """Short, port-free detail string for an exception (aggregatable, unlike raw messages)."""
    name = type(exc).__name__
    if isinstance(exc, StreamReset | GoawayRefused):
        return f"{name}:{exc.code}"
    if isinstance(exc, GrpcError):
        cause = grpc_cause(exc.details)
        return f"{name}:{exc.code}" + (f":{cause}" if cause else "")
    code = _errno_of(exc)
    if code is not None:
        return f"{name}:{errno.errorcode.get(code, str(code))}"
    return name
