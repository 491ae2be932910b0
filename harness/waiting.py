"""One wait primitive: poll `probe` until it returns a non-None value, or raise naming what was awaited and the
last state seen (lightkube's `wait(..., raise_for_conditions)`, kr8s's `async_wait`). A sync twin serves
cluster.py, which runs outside any event loop.

probe() returns (done_value_or_None, state_text). Raising inside probe (e.g. on a terminal condition such as
ProgressDeadlineExceeded) ends the wait at once: fail fast instead of spinning until the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from harness.errors import HarnessError, RolloutError

T = TypeVar("T")
Probe = Callable[[], tuple[T | None, str]]


async def wait_for(
    probe: Callable[[], Awaitable[tuple[T | None, str]]],
    *,
    timeout: float,
    every: float,
    what: str,
    error: type[HarnessError] = RolloutError,
) -> T:
    """Await probe() every `every` seconds until it yields a value; raise `error` after `timeout` seconds."""
    last = "no answer yet"
    try:
        async with asyncio.timeout(timeout):
            while True:
                value, last = await probe()
                if value is not None:
                    return value
                await asyncio.sleep(every)
    except TimeoutError:
        raise error(f"{what}: not done within {timeout:.0f}s (last seen: {last})") from None


def wait_for_sync(probe: Probe[T], *, timeout: float, every: float, what: str, error: type[HarnessError] = RolloutError) -> T:
    """The blocking twin of wait_for, for code that runs in a thread or before any event loop exists."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        value, last = probe()
        if value is not None:
            return value
        if time.monotonic() + every > deadline:
            raise error(f"{what}: not done within {timeout:.0f}s (last seen: {last})")
        time.sleep(every)
