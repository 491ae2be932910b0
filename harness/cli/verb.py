"""What a verb is, and what every verb's flags share: a parser whose complaints are UsageErrors (one line, exit 2),
converters for positive numbers, and the check that an output path can be written before any work is done."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.durations import parse_duration
from harness.errors import UsageError

CONNECTIONS_HELP = "keep-alive mode: connections the requests are spread over (default %(default)d)"
MUX_CONNECTIONS_HELP = "modes h2 and grpc: connections (gRPC: channels) the streams are spread over (default %(default)d)"


@dataclass(frozen=True)
class Verb:
    """One verb of the command line: its flags and what it runs. harness.cli lists them in a table."""

    name: str
    summary: str
    """One line, in the list of verbs."""
    description: str
    """What it does, one or two sentences: the top of its --help."""
    examples: str
    """One or two command lines, the bottom of its --help."""
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], Awaitable[int]]
    """Turns the parsed flags into typed options at once, calls the library with them, returns the exit status."""


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # `--duration -1s` is a flag and a (negative) value its converter refuses in words, not a flag missing its
        # value and an unknown option `-1s`: argparse takes a word for a value when it looks like a negative number
        # (no flag here starts with a digit)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def conv(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return conv


def duration(text: str) -> float:
    """A flag's duration (harness.durations.parse_duration); argparse puts the flag in front of a complaint."""
    try:
        return parse_duration(text)
    except UsageError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def percent(text: str) -> float:
    """`10%` or `0.1` -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (give e.g. 10%)") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0% and 100%: {text!r}")
    return value


def writable_dir(path: Path, flag: str) -> None:
    """Reject an output directory (`flag`, e.g. run's --out) that cannot be written before the run, not after it
    (results would be lost). Creates it."""
    if why := _unwritable(path):
        raise UsageError(f"{flag} {path}: cannot write there ({why})")


def writable_file(path: Path, flag: str) -> None:
    """Reject an output file (`flag`: --junit, load's --out or --records) that is a directory, or that cannot be
    written, before the run. Creates its directory."""
    why = "a directory; give a file name" if path.is_dir() else _unwritable(path.absolute().parent, path)
    if why:
        raise UsageError(f"{flag} {path}: cannot write there ({why})")


def _unwritable(directory: Path, file: Path | None = None) -> str:
    """Why a file cannot be created in `directory` (made if missing), or `file`, if it exists, opened to append to
    (as --records opens it; --out and --junit replace it, so their directory is what counts); "" if they can."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".rh-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        if file is not None and file.exists():
            file.open("a").close()
    except OSError as e:
        return e.strerror or str(e)
    return ""
