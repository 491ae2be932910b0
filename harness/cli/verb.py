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
        raise UsageError(message, usage=self.usage_line())

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:  # type: ignore[override]
        """As argparse's, but what this parser does not know is refused here, not handed up: so an unknown flag after a
        verb is refused with the verb's usage line, not the top level's (argparse's verb parser passes it up)."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def synopsis(self) -> str:
        """The command in one line however many flags it has: `PROG [options] POSITIONALS`, the positionals written as
        argparse writes them (a verb's choices in braces, an optional one in brackets)."""
        words = [self.prog, "[options]"]
        for a in self._actions:  # argparse keeps its actions private, as shtab reads them too
            if not a.option_strings:
                name = a.metavar if isinstance(a.metavar, str) else ("{" + ",".join(a.choices) + "}" if a.choices else a.dest)
                nargs = {"?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} [{name} ...]", argparse.PARSER: f"{name} ..."}
                words.append(nargs.get(str(a.nargs), name))
        return " ".join(words)

    def usage_line(self) -> str:
        """What follows an error the parser found: `usage: SYNOPSIS  (PROG --help lists them)`."""
        return f"usage: {self.synopsis()}  ({self.prog} --help lists them)"


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


def verb_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of the verbs under `parser`, by name (argparse keeps them private, as shtab reads them)."""
    return next((dict(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
