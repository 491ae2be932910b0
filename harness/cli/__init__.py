"""rollout-harness command line: `up`, `down`, `load-image`, `load`, `run`, `compare`, `report`, `check`, `variants`,
`client-image`, `census`, `completion`.

One module per verb (up and down share `cluster`, run and compare share `matrix`), each verb a Verb record with its
flags (`add_arguments`) and what it runs (`run`), listed in VERBS. Shared: harness.cli.verb (the Verb record, the
parser), harness.cli.output (budget, --format, --junit, and printing the cells), harness.cli.runflags (the flags of a
measured run, into RunOptions). Each verb turns the parsed flags into typed options at once and calls the library
with those: nothing below the command line sees an argparse Namespace.

main(argv) is the single exit point: results on stdout (or --out), diagnostics on stderr through the `harness`
logger (never the root logger: a program that calls main() keeps its logging as it was), any error as one line with
the exit code harness.errors gives it (2 usage, 3 infrastructure, 4 a bug, whose traceback goes to a log file:
harness.cli.crash), Ctrl-C as exit code 130 and SIGTERM as 143, after cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Sequence
from typing import Any

from harness import __version__, progress, sh
from harness.cli import census, check, client_image, cluster, completion, load, load_image, matrix, report, variants
from harness.cli.crash import failed
from harness.cli.verb import Parser, Verb
from harness.errors import ExitCode

log = logging.getLogger("harness")

VERBS: dict[str, Verb] = {
    v.name: v
    for v in (
        cluster.UP,
        cluster.DOWN,
        load_image.VERB,
        load.VERB,
        matrix.RUN,
        matrix.COMPARE,
        check.VERB,
        client_image.VERB,
        variants.VERB,
        report.VERB,
        census.VERB,
        completion.VERB,
    )
}

NOISY = ("kubernetes", "urllib3", "asyncio")
"""Loggers whose retries would bury the one-line error: errors only, unless -vv."""


def build_parser(parser_class: type[Parser] = Parser) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    p = parser_class(
        prog="rollout-harness",
        description="Measure traffic lost while a Kubernetes Deployment rolls.",
        epilog="exit codes:\n" + "\n".join(f"  {c.value:<4} {c.meaning}" for c in ExitCode),
        formatter_class=raw,
    )
    p.add_argument("-V", "--version", action="version", version=f"rollout-harness {__version__}")
    _add_verbosity(p, "")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=parser_class)
    for v in VERBS.values():
        vp = sub.add_parser(v.name, help=v.summary, description=v.description, epilog=v.examples, formatter_class=raw)
        v.add_arguments(vp)
        _add_verbosity(vp, "_after")  # -v/-q also after the verb; counted with those before it
    return p


class _GivenOnly(Parser):
    """A parser that sets only what the command line gives: every default suppressed."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return super().add_argument(*args, **_no_default(kwargs))

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:  # argparse's group type is private
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument
        group.add_argument = lambda *a, **kw: plain(*a, **_no_default(kw))  # type: ignore[method-assign]
        return group


def _no_default(kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs if kwargs.get("action") in ("help", "version") else kwargs | {"default": argparse.SUPPRESS}


def given(argv: Sequence[str] | None) -> frozenset[str]:
    """The dests the command line set, whatever their value (a gate file fills the others: harness.cli.gatefile).
    An optional positional (check's FILE) counts as set even when absent: argparse sets those regardless."""
    return frozenset(vars(build_parser(_GivenOnly).parse_args(argv)))


def _add_verbosity(p: argparse.ArgumentParser, suffix: str) -> None:
    p.add_argument("-v", "--verbose", dest=f"verbose{suffix}", action="count", default=0, help="more detail on stderr (-vv: debug)")
    p.add_argument("-q", "--quiet", dest=f"quiet{suffix}", action="store_true", help="only errors on stderr")


def _levels(verbose: int, quiet: bool) -> dict[str, int]:
    """The log level of each logger main() writes to stderr."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    return {"harness": level} | dict.fromkeys(NOISY, logging.DEBUG if verbose > 1 else logging.ERROR)


class Terminated(Exception):
    """SIGTERM arrived: the run was cancelled as Ctrl-C cancels it, and cleaned up."""


class Interrupted(Exception):
    """Ctrl-C arrived: the run was cancelled, and cleaned up."""


class _Stop:
    """The signals that stop a run: the first (SIGINT or SIGTERM) cancels the main task and the running long commands
    (harness.sh.cancel_running); the second, during the clean-up that follows, is acknowledged and ignored, so the
    clean-up completes; the third forces the exit at once, its commands killed, the clean-up left unfinished."""

    def __init__(self, task: asyncio.Task[int]) -> None:
        self.task = task
        self.first: signal.Signals | None = None
        self.count = 0

    def __call__(self, sig: signal.Signals) -> None:
        self.count += 1
        if self.count == 1:
            self.first = sig
            sh.cancel_running()
            self.task.cancel()
        elif self.count == 2:
            print("rollout-harness: cleaning up; press Ctrl-C again to force", file=sys.stderr, flush=True)
        else:
            print("rollout-harness: forced exit; clean-up not finished", file=sys.stderr, flush=True)
            sh.kill_all()
            os._exit(_code(self.first or sig))


def _code(sig: signal.Signals) -> int:
    return ExitCode.TERMINATED if sig == signal.SIGTERM else ExitCode.INTERRUPTED


async def _until_terminated(run: Awaitable[int]) -> int:
    """`run`, cancelled by Ctrl-C or SIGTERM alike, so the same cleanup runs (namespaces deleted, the load process
    and client pod stopped, a partial cluster deleted) whether a user or a CI runner stops it. See _Stop."""
    task = asyncio.current_task()
    assert task is not None
    stop = _Stop(task)
    # Signal handlers belong to the main thread; a caller running main() in a worker thread (asyncio.to_thread,
    # an embedding service) keeps its own signal handling. They are left in place: loop.close() removes them, after
    # asyncio.run has waited for the worker threads, so the clean-up done there is covered too.
    if threading.current_thread() is threading.main_thread():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop, sig)
    try:
        return await run
    except asyncio.CancelledError:
        if stop.first == signal.SIGTERM:
            raise Terminated from None
        if stop.first == signal.SIGINT:
            raise Interrupted from None
        raise


def execute(run: Awaitable[int], argv: Sequence[str] | None = None) -> int:
    """Run a verb's coroutine as main() does: its exit code, Ctrl-C as 130 and SIGTERM as 143 after clean-up (one
    line each), an error as one line (harness.cli.crash)."""
    try:
        return asyncio.run(_until_terminated(run))
    except (KeyboardInterrupt, Interrupted):
        print("rollout-harness: interrupted; cleaned up", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Terminated:
        print("rollout-harness: terminated; cleaned up", file=sys.stderr)
        return ExitCode.TERMINATED
    except Exception as e:  # a HarnessError as one line; anything else is a bug, its traceback saved to a log
        return failed(e, argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        args.given = given(argv)
    except Exception as e:
        return failed(e, argv)
    verbose, quiet = args.verbose + args.verbose_after, args.quiet or args.quiet_after
    with progress.logging_to(sys.stderr, _levels(verbose, quiet)):
        return execute(VERBS[args.verb].run(args), argv)
