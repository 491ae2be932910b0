"""The tables of bench/side_by_side.sh: per setting, what the matrix cost and how trustworthy its trials were;
per cell, the verdict and the lost range under each setting. Reads the run@2 results each setting wrote."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from tabulate import tabulate

from harness.model import Status
from harness.results import RunResult, load_results
from harness.verdict import fold_cells


def setting_row(label: str, runs: list[RunResult], wall: float, lossless: set[str]) -> list[object]:
    measured = sum(r.window.own_s for r in runs if r.window)
    used = [r for r in runs if r.status is Status.USED]
    gaps = [r.blindness.max_gap_ms for r in runs if r.blindness] or [0.0]
    false = [r for r in used if r.variant in lossless and r.lost > 0]
    return [
        label,
        len(runs),
        round(wall),
        f"{100 * (wall - measured) / wall:.0f} %",
        f"{sum(r.setup_s - r.setup_ahead_s for r in runs) / len(runs):.2f} / {sum(r.setup_ahead_s for r in runs) / len(runs):.2f}",
        len(runs) - len(used),
        f"{statistics.median(gaps):.0f} / {max(gaps):.0f}",
        f"{len(false)} of {sum(1 for r in used if r.variant in lossless)}",
    ]


def main(out: Path, labels: list[str]) -> None:
    lossless = set(os.environ.get("LOSSLESS", "").split(","))
    per = {label: load_results(out / label) for label in labels}
    rows = [setting_row(label, per[label], float((out / label / "wall").read_text()), lossless) for label in labels]
    head = ["setting", "runs", "wall s", "outside windows", "set-up s per run (waited / in a tail)", "excluded"]
    print(tabulate(rows, [*head, "max gap ms (median / max)", "false losses"], tablefmt="github"))
    for label in labels:
        for r in per[label]:
            if r.status is Status.USED and r.variant in lossless and r.lost:
                print(f"  {label}: false loss in {r.name}: {r.lost_by_kind}")
    print()
    cells = {label: {(c.variant, c.trigger, c.mode): c for c in fold_cells(per[label])} for label in labels}
    keys = list(dict.fromkeys(k for label in labels for k in cells[label]))
    table = []
    for key in keys:
        row: list[object] = [" × ".join(key)]
        for label in labels:
            c = cells[label].get(key)
            lost = sorted(r.lost for r in per[label] if (r.variant, r.trigger, r.mode) == key and r.status is Status.USED)
            ci = f" [{c.lost_per_rollout_ci[0]:.0f}, {c.lost_per_rollout_ci[1]:.0f}]" if c and c.lost_per_rollout_ci else ""
            row.append(
                f"{c.verdict.value} {c.rollouts_lost}/{c.rollouts}, mean {c.lost_per_rollout_mean:.0f}{ci}, each {lost}" if c else "-"
            )
        table.append(row)
    print(tabulate(table, ["cell", *labels], tablefmt="github"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
