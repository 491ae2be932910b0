"""The flags that say how verdicts come out, shared by run, compare and report (the budget also by load): the CI
gate's budget, the format on stdout and a JUnit file; and `emit`, which prints the cells that way and gates them."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.cli.verb import writable_file
from harness.files import write_atomic
from harness.gate import EXIT_OVER_BUDGET, Budget
from harness.results import RunResult

log = logging.getLogger("harness")


class Format(StrEnum):
    """What stdout carries."""

    MD = "md"
    JSON = "json"
    CSV = "csv"


def add_budget_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument("--max-failures", type=int, default=None, metavar="N", help="CI gate: exit 1 if a trial loses more than N requests")
    p.add_argument(
        "--max-fail-pct", type=float, default=None, metavar="P", help="CI gate: exit 1 if a trial loses more than P %% of its requests"
    )


def budget(args: argparse.Namespace) -> Budget:
    return Budget(args.max_failures, args.max_fail_pct)


def add_arguments(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The budget, --format and --junit."""
    add_budget_arguments(p)
    p.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default=Format.MD.value,
        help="stdout: markdown table, cells as JSON, or CSV (default md)",
    )
    p.add_argument("--junit", type=Path, default=None, metavar="FILE", help="also write a JUnit XML report, one testcase per cell")


@dataclass(frozen=True)
class Rendering:
    """How the cells come out: on stdout in `format`, gated by `budget`, and in a JUnit file if `junit`."""

    format: Format = Format.MD
    budget: Budget = field(default_factory=Budget)
    junit: Path | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> Rendering:
        return cls(Format(args.format), budget(args), args.junit)

    def check_writable(self) -> None:
        """UsageError now if the JUnit file could not be written at the end."""
        if self.junit is not None:
            writable_file(self.junit, "--junit")


def emit(results: list[RunResult], how: Rendering, footer: str = "") -> int:
    """Print the cells as `how` says, write the JUnit file, and return the gate's exit status."""
    from harness.report import LEGEND, cells_csv, cells_json, compare_table, junit_xml, settings_line
    from harness.verdict import fold_cells

    budget = how.budget
    cells = fold_cells(results)
    over = [(c, why) for c in cells if (why := budget.breach(c))]
    if how.format is Format.JSON:
        print(cells_json(results, budget))
    elif how.format is Format.CSV:
        print(cells_csv(results, budget), end="")
    else:
        print(settings_line(results), compare_table(results, budget), LEGEND, sep="\n\n")
        if footer:
            print(f"\n{footer}")
    if how.junit is not None:
        write_atomic(how.junit, junit_xml(results, budget))
    if not budget.active:
        return 0
    for c, why in over:
        log.warning("over budget: %s × %s (%s): %s", c.variant, c.trigger, c.mode, why)
    if over:
        log.warning("budget (%s): %d of %d cells over", budget.describe(), len(over), len(cells))
    else:
        log.info("budget (%s): all %d cells within", budget.describe(), len(cells))
    return EXIT_OVER_BUDGET if over else 0
