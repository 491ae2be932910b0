"""`report`: the comparison table (and the gate) again, from the JSON results a run or compare saved."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli import output
from harness.cli.verb import Verb


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path)
    output.add_arguments(p)


async def run(args: argparse.Namespace) -> int:
    return report(args.dir, output.Rendering.of(args))


def report(results_dir: Path, how: output.Rendering) -> int:
    from harness.results import load_results

    how.check_writable()
    return output.emit(load_results(results_dir), how)


VERB = Verb(
    "report",
    "re-render the comparison table (and the gate) from saved JSON",
    "Read every run result saved under a directory (its subdirectories too), fold them into cells and print the\n"
    "verdicts, as compare does at its end; with a budget, exit 1 if a cell breaks it. No cluster needed.",
    "examples:\n  rollout-harness report results\n  rollout-harness report results --format json --max-fail-pct 0.5 --junit junit.xml",
    add_arguments,
    run,
)
