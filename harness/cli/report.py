"""`report`: the comparison table (and the gate) again, from the JSON results a run or compare saved; with
`--pictures DIR`, their pictures drawn again (harness.plot.redraw)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.cli import output
from harness.cli.verb import Verb, writable_dir
from harness.errors import EnvironmentProblem

log = logging.getLogger("harness")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH", help="result JSON files, or directories searched for them")
    output.add_arguments(p)
    p.add_argument(
        "--pictures",
        type=Path,
        default=None,
        metavar="DIR",
        help="also draw the PNGs again into DIR: one per run (from the records kept beside it, else per second), an overview",
    )


async def run(args: argparse.Namespace) -> int:
    return report(args.paths, output.Rendering.of(args), args.pictures)


def report(paths: list[Path], how: output.Rendering, pictures: Path | None = None) -> int:
    from harness import plot
    from harness.results import load_result_files

    how.check_writable()
    if pictures is not None:
        if not plot.available():
            raise EnvironmentProblem("--pictures needs matplotlib: pip install 'rollout-harness[plot]'")
        writable_dir(pictures, "--pictures")
    saved = [found for p in paths for found in load_result_files(p)]
    code = output.emit([r for _, r in saved], how)
    if pictures is not None:
        log.info("pictures: %d drawn in %s", plot.redraw(saved, pictures), pictures)
    return code


VERB = Verb(
    "report",
    "re-render the comparison table (and the gate) from saved JSON",
    "Read the run results in the files given or saved under the directories given (their subdirectories too), fold\n"
    "them into cells (never results made with different options, code, manifests or images) and print the verdicts, as\n"
    "compare does at its end; with a budget, exit 1 if a cell breaks it; with --pictures, draw the pictures again. No\n"
    "cluster needed.",
    "examples:\n  rollout-harness report results\n  rollout-harness report results --format json --max-fail-pct 0.5 --junit junit.xml\n"
    "  rollout-harness report results/naive__drain__new__t1.json --pictures pictures",
    add_arguments,
    run,
)
