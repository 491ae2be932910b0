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
    CONNECT_TIMEOUT = "connect_timeout"
    READ_TIMEOUT = "read_timeout"
    HTTP_5XX = "http_5xx"
    HTTP_OTHER = "http_other"
    OTHER = "other"
    CLIENT_ERROR = "client_error"  # the generator itself ran out of something (fds, ports, memory): not the service


# What counts as a lost request. CLIENT_ERROR is left out: it says the client was broken, not the service, and
# makes the run unreliable instead.
FAILURE_KINDS: tuple[FailureKind, ...] = tuple(k for k in FailureKind if k not in (FailureKind.OK, FailureKind.CLIENT_ERROR))
LOST = frozenset(k.value for k in FAILURE_KINDS)  # the same as values, for membership tests on record kinds
# Failures a stalled generator can fake (its timer fires late); refused, reset, idle_close, no_route and HTTP codes it
# cannot.
TIMER_KINDS = frozenset({FailureKind.CONNECT_TIMEOUT, FailureKind.READ_TIMEOUT})

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


def describe(exc: BaseException) -> str:
    """Short, port-free detail string for an exception (aggregatable, unlike raw messages)."""
    code = _errno_of(exc)
    name = type(exc).__name__
    if code is not None:
        return f"{name}:{errno.errorcode.get(code, str(code))}"
    return name
