"""Progress of a matrix. On a terminal: one status line at the bottom of stderr (cell i/N, variant × trigger, mode,
trial, phase and its elapsed time, time left), redrawn every second and kept under the log lines. Not on a
terminal (CI logs, pipes): nothing but the log lines, which already name each cell."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TextIO


class StatusLine:
    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if tty is None else tty
        self._lock = threading.RLock()
        self._cell = ""
        self._phase = ""
        self._phase_t0 = 0.0
        self._done_at: float | None = None
        self._shown = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def cell(self, text: str, left_s: float | None) -> None:
        """A new cell starts; left_s: the estimated time left for the whole matrix (None: unknown yet)."""
        with self._lock:
            self._cell, self._phase, self._phase_t0 = text, "starting", time.monotonic()
            self._done_at = None if left_s is None else time.monotonic() + left_s
            self._draw()
        if self.enabled and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="status-line", daemon=True)
            self._ticker.start()

    def phase(self, name: str) -> None:
        with self._lock:
            self._phase, self._phase_t0 = name, time.monotonic()
            self._draw()

    def text(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        parts = [self._cell, f"{self._phase} {now - self._phase_t0:.0f}s"]
        if self._done_at is not None:
            left = max(0.0, self._done_at - now)
            parts.append(f"~{left / 60:.0f} min left" if left >= 90 else f"~{left:.0f}s left")
        return " · ".join(p for p in parts if p)

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Erase the status line while something else writes to the stream, then draw it again."""
        with self._lock:
            self._erase()
            try:
                yield
            finally:
                self._draw()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._erase()
            self._cell = ""

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        if not self.enabled or not self._cell:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r\x1b[2K" + self.text()[:width])
        self.stream.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._shown = False


_line: ContextVar[StatusLine | None] = ContextVar("progress_line", default=None)


def status() -> StatusLine | None:
    """The status line of the `logging_to` this code runs under (None: none, e.g. a library caller's run)."""
    return _line.get()


@contextmanager
def logging_to(stream: TextIO, levels: Mapping[str, int]) -> Iterator[StatusLine]:
    """For the duration: the named loggers' records (message only) on `stream`, at the given levels and not passed on
    to the root logger, under a status line that is drawn only if `stream` is a terminal; the status line current
    in this context (`status`, `phase`). On exit the line is erased and the loggers are as they were: the root
    logger, and every logger not named, are never touched."""
    line = StatusLine(stream)
    handler = _Handler(stream, line)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [(logging.getLogger(name), level) for name, level in levels.items()]
    saved = [(lg, lg.level, lg.propagate) for lg, _ in loggers]
    for lg, level in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
        lg.propagate = False
    token = _line.set(line)
    try:
        yield line
    finally:
        _line.reset(token)
        line.close()
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


_label: ContextVar[str] = ContextVar("progress_label", default="")


def label(text: str) -> None:
    """Put `text` before every phase named from here on in this task (and the tasks and threads it starts): a
    cell set up while the one before it is measured shows as "next cell: deploying"."""
    _label.set(text)


def phase(name: str) -> None:
    """Name what the current cell is doing (a no-op unless a status line is current and drawn)."""
    if (line := _line.get()) is not None:
        line.phase(_label.get() + name)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self, stream: TextIO, line: StatusLine) -> None:
        super().__init__(stream)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        with self.line.hidden():
            super().emit(record)
