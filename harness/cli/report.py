"""`report`: the comparison table (and the gate) again, from the JSON results a run or compare saved."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import output
from harness.cli.verb import Verb


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="result JSON files, or directories searched for them")
    output.add_arguments(p)


async def run(args: argparse.Namespace) -> int:
    return report(args.paths, output.Rendering.of(args))


def report(paths: list[Path], how: output.Rendering) -> int:
    from harness.results import load_results

    how.check_writable()
    return output.emit([r for p in paths for r in load_results(p)], how)


VERB = Verb(
    "report",
    "re-render the comparison table (and the gate) from saved JSON",
    "Read the run results in the files given or saved under the directories given (their subdirectories too), fold\n"
    "them into cells (never results made with different options, code, manifests or images) and print the verdicts, as\n"
    "compare does at its end; with a budget, exit 1 if a cell breaks it. No cluster needed.",
    "examples:\n  rollout-harness report results\n  rollout-harness report results --format json --max-fail-pct 0.5 --junit junit.xml",
    add_arguments,
    run,
)
