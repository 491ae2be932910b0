"""rollout-harness command line: `up`, `down`, `load`, `run`, `compare`, `report`.

main(argv) is the single exit point: results on stdout (or --out), progress on stderr via logging,
any HarnessError as one line with exit code 2, Ctrl-C as exit code 130 after cleanup.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.durations import ACCEPTED, parse_duration
from harness.errors import HarnessError, UsageError
from harness.load import ConnMode

log = logging.getLogger("harness")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _duration(text: str) -> float:
    return parse_duration(text)


def _positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def conv(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return conv


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rollout-harness", description="Measure traffic lost while a Kubernetes Deployment rolls.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    up = sub.add_parser("up", help="bring up the kind cluster (idempotent; builds the node image offline if needed)")
    up.add_argument(
        "--offline",
        choices=["auto", "yes", "no"],
        default="auto",
        help="build the node image locally (yes), pull kindest/node (no), or decide (auto)",
    )
    sub.add_parser("down", help="delete the harness's kind cluster (idempotent)")

    ld = sub.add_parser("load", help="open-loop HTTP load against a URL, like `fortio load`")
    ld.add_argument("url")
    _load_flags(ld)
    ld.add_argument("-n", "--requests", type=_positive(int), default=None, help="stop after this many requests")
    ld.add_argument("--out", type=Path, help="write the JSON result here")
    ld.add_argument("--records", type=Path, help="stream every request record here (JSONL)")
    ld.add_argument("--timeline", action="store_true", help="also print the per-second failure timeline")

    for verb in ("run", "compare"):
        r = sub.add_parser(verb, help="one variant × trigger cell" if verb == "run" else "a variants × triggers matrix")
        if verb == "run":
            r.add_argument("--variant", default="naive")
            r.add_argument("--trigger", default="set-image")
            r.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value)
        else:
            r.add_argument("--variants", default=None, help="comma-separated (default: a small useful set)")
            r.add_argument("--triggers", default=None, help="comma-separated (default: set-image,drain)")
            r.add_argument("--modes", default=ConnMode.NEW.value, help="comma-separated: new,keepalive")
            r.add_argument("--trials", type=_positive(int), default=1)
        r.add_argument("--rate", type=_positive(float), default=200.0, help="requests/s (default 200)")
        r.add_argument("--baseline", type=_duration, default=3.0, help="load before the trigger (default 3s)")
        r.add_argument("--tail", type=_duration, default=3.0, help="load after the rollout completes (default 3s)")
        r.add_argument("--rollout-timeout", type=_duration, default=180.0, help="fail if a rollout takes longer")
        r.add_argument("--connect-timeout", type=_duration, default=3.0, help="per request (default 3s: survives one lost SYN)")
        r.add_argument("--read-timeout", type=_duration, default=5.0, help="per request (default 5s)")
        r.add_argument(
            "--max-lateness",
            type=_duration,
            default=0.5,
            help="mark a run unreliable when generator start-lateness p99 exceeds this (default 500ms: well under "
            "the connect timeout, so a stalled generator cannot fake timeouts)",
        )
        r.add_argument("--out", type=Path, default=Path("results"), help="directory for JSON per run")
        r.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the bundled one)")
        r.add_argument("--no-up", action="store_true", help="do not create the cluster; fail if it is not there")
        r.add_argument("--keep-records", action="store_true", help="also save every request record (JSONL) next to the JSON")

    rep = sub.add_parser("report", help="re-render the comparison table from saved JSON")
    rep.add_argument("dir", type=Path)
    return p


def _load_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=_positive(float), default=200.0, help="requests/s (default 200)")
    p.add_argument("--duration", type=_duration, default=10.0, help=f"how long ({ACCEPTED}; default 10s)")
    p.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value)
    p.add_argument("--connect-timeout", type=_duration, default=1.0)
    p.add_argument("--read-timeout", type=_duration, default=2.0)
    p.add_argument("--max-in-flight", type=_positive(int), default=2000)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    if verbose < 2:
        for noisy in ("kubernetes", "urllib3", "asyncio"):  # their retries would bury the one-line error
            logging.getLogger(noisy).setLevel(logging.ERROR)


async def _dispatch(args: argparse.Namespace) -> int:
    if args.verb == "load":
        from harness.loadcmd import load_command

        return await load_command(args)
    if args.verb == "report":
        from harness.report import compare_table, load_runs

        print(compare_table(load_runs(args.dir)))
        return 0
    if args.verb == "down":
        from harness import cluster

        await asyncio.to_thread(cluster.down)
        return 0
    if args.verb == "up":
        from harness import cluster

        info = await asyncio.to_thread(cluster.up, args.offline)
        print(f"cluster {info.name} ready; kubeconfig {info.kubeconfig}")
        return 0
    from harness.experiment import compare_command, run_command

    return await (run_command(args) if args.verb == "run" else compare_command(args))


def main(argv: Sequence[str] | None = None) -> int:
    verbose = 0
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        _setup_logging(args.verbose, args.quiet)
        return asyncio.run(_dispatch(args))
    except HarnessError as e:
        print(f"rollout-harness: error: {e}", file=sys.stderr)
        if verbose:
            logging.getLogger("harness").debug("detail", exc_info=True)
        return 2
    except KeyboardInterrupt:
        print("rollout-harness: interrupted; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
