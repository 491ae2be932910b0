"""`check [FILE]`: validate a gate file (harness.cli.gatefile) without a cluster, as `compare` would use it."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from harness.cli import gatefile, matrix, output
from harness.cli.verb import Parser, Verb
from harness.errors import ExitCode, UsageError

log = logging.getLogger("harness")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=None,
        help=f"the gate file (default: ./{gatefile.NAME}, else [tool.{gatefile.TOOL}] in ./pyproject.toml)",
    )


def problems(gate: gatefile.GateFile) -> tuple[list[str], str]:
    """What is wrong with the gate file, one line each, and if nothing is, a one-line summary of what it runs."""
    if gate.problems:
        return list(gate.problems), ""
    flags = Parser(prog="compare")
    matrix.add_compare_arguments(flags)
    args = gatefile.apply(flags.parse_args([]), gate, frozenset())
    args.verb = "compare"
    try:
        how = output.Rendering.of(args)  # the budget's own checks
        opts, cells = matrix.compare_plan(args)
        opts.validate(cells)
    except UsageError as e:
        return [str(e)], ""
    from harness.cell import cell_variant

    found = []
    for name in dict.fromkeys(c.variant for c in cells):  # each variant (or workload + overlays) loads, as run_cells does
        try:
            cell_variant(opts, name)
        except UsageError as e:
            found.append(f"variants: {e}")
    s = opts.schedule
    certify = f"{100 * s.certify:g} %" if s.certify is not None else "off"
    budget = how.budget.describe() or "none"
    summary = f"{len(cells) // s.trials} cells × {s.trials} trials, budget {budget}, certify {certify}"
    return found, "" if found else summary


async def run(args: argparse.Namespace) -> int:
    path = args.file if args.file is not None else gatefile.find(Path.cwd())
    if path is None:
        raise UsageError(f"no {gatefile.NAME} here, nor [tool.{gatefile.TOOL}] in ./pyproject.toml; give the file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    found, summary = problems(gatefile.read(path))
    for line in found:
        print(f"{path}: {line}")
    if found:
        return ExitCode.USAGE
    print(f"{path}: {summary}")
    return 0


VERB = Verb(
    "check",
    "validate a gate file (rollout-harness.toml) without a cluster",
    f"Read a gate file ({gatefile.NAME}, or [tool.{gatefile.TOOL}] in pyproject.toml) as compare would, and print each\n"
    "problem on one line (exit 2), or what it runs (exit 0). No cluster is needed.",
    "examples:\n  rollout-harness check\n  rollout-harness check ci/rollout-harness.toml",
    add_arguments,
    run,
)
