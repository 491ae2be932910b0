"""`census`: everything the harness makes that is still on this host and on its cluster (harness.leftovers), counted
by kind, for a moment when no harness command runs; exit 1 if anything is there. Undoes nothing: the next `up`, run or
compare repairs what dead runs left on the cluster, `down` the host."""

from __future__ import annotations

import argparse
import asyncio

from tabulate import tabulate

from harness import cluster, leftovers
from harness.cli.verb import Verb, duration


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait", type=duration, default=0.0, metavar="S",
        help="wait up to S seconds for what is still going away (terminating namespaces, exiting workers) (default 0)",
    )  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    found = await asyncio.to_thread(leftovers.take_census, cluster.CLUSTER, args.wait)
    rows = [(kind, n, "; ".join(getattr(found, kind))[:200]) for kind, n in found.counts().items()]
    print(tabulate(rows, headers=["leftover", "count", "which"], tablefmt="github"))
    return 1 if found.total() else 0


VERB = Verb(
    "census",
    "count what harness runs left behind (exit 1 if anything)",
    "Count what the harness makes that is still there, on this host and its kind cluster: namespaces, cordons, freeze\n"
    "marks, frozen node containers, /dev/shm records, load workers, surplus host guard rules and settings. Run it when\n"
    "no harness command runs: then all of it is left over. Changes nothing; the next `up`, run or compare repairs\n"
    "the cluster, `down` the host.",
    "examples:\n  rollout-harness census\n  rollout-harness census --wait 120",
    add_arguments,
    run,
)
