"""Markdown tables (tabulate): the comparison table from RunResults (one row per cell, verdict first) and the
summary/timeline tables of a plain `load`."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from harness.classify import FAILURE_KINDS
from harness.results import RunResult
from harness.summary import RunSummary
from harness.verdict import CellVerdict, Verdict, fold_cells

SHORT = {
    "refused": "refused",
    "no_route": "no route",
    "reset": "reset",
    "connect_timeout": "conn t/o",
    "read_timeout": "read t/o",
    "http_5xx": "5xx",
    "http_other": "4xx",
    "other": "other",
}

LEGEND = (
    "verdict: lossless = 0 lost in every used trial (loss: 95 % upper bound on the per-request loss rate); "
    "lossy = some used trial lost requests (loss: mean fail % [95 % t-interval over used trials]); "
    "inconclusive = too few usable trials. lost = failures from the trigger to the end of the tail (min-max over "
    "used trials); kind columns = mean per used trial; used = trials without rollout failure, baseline failures "
    "(noisy) or a stalled/blind generator (unreliable); max gap = longest time inside the window with no request "
    "sent; settle s = trigger until old pods gone and endpoints settled."
)


def summary_table(s: RunSummary) -> str:
    rows: list[list[Any]] = [["requests", s.requests], ["ok", s.ok], ["failed", s.failed], ["failure %", f"{s.failure_pct:.3f}"]]
    rows += [[f"  {k}", n] for k, n in s.by_kind.items()]
    rows += [["  HTTP codes", ", ".join(f"{c}×{n}" for c, n in s.http_codes.items())]] if s.http_codes else []
    rows += [
        ["skipped (in-flight cap)", s.skipped],
        ["longest failure streak ms", s.longest_outage_ms],
        ["seconds with a failure", s.disruption_seconds],
        ["latency p50 / p99 / max ms", f"{s.latency_p50_ms} / {s.latency_p99_ms} / {s.latency_max_ms}"],
        ["start lateness p50 / p99 ms", f"{s.lateness_p50_ms} / {s.lateness_p99_ms}"],
        ["achieved rate req/s", s.achieved_rate],
    ]
    return tabulate(rows, headers=["metric", "value"], tablefmt="github")


def timeline_table(s: RunSummary) -> str:
    kinds = [k.value for k in FAILURE_KINDS if any(k.value in row for row in s.timeline)]
    rows = [[row["t"], row.get("ok", 0), *[row.get(k, 0) for k in kinds]] for row in s.timeline if any(row.get(k, 0) for k in kinds)]
    if not rows:
        return "(no failures in any second)"
    return tabulate(rows, headers=["second", "ok", *[SHORT[k] for k in kinds]], tablefmt="github")


def _num(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def _loss(c: CellVerdict) -> str:
    if c.verdict is Verdict.LOSSLESS and c.upper_bound_pct is not None:
        return f"0 (≤ {c.upper_bound_pct:.2g} %)"
    if c.verdict is Verdict.LOSSY:
        ci = f" [{c.fail_pct_ci[0]:.2f}, {c.fail_pct_ci[1]:.2f}]" if c.fail_pct_ci else ""
        return f"{c.fail_pct_mean:.2f} %{ci}"
    return "-"


def _notes(c: CellVerdict) -> str:
    out = []
    if c.excluded_real:
        out.append("excluded trials saw " + ", ".join(f"{SHORT.get(k, k)} {n}" for k, n in sorted(c.excluded_real.items())))
    out += [n[:90] for n in c.notes]
    return "; ".join(out)


def settings_line(runs: list[RunResult]) -> str:
    """The cluster and client settings behind the table, one line (they are part of every result)."""
    seen = sorted({tuple(sorted(r.provenance.cluster.items())) for r in runs})
    parts = ["; ".join(f"{k} {v}" for k, v in s) for s in seen]
    return ("cluster: " + parts[0]) if len(parts) == 1 else "clusters (see the options column): " + " | ".join(parts)


def compare_table(runs: list[RunResult]) -> str:
    """One row per variant × trigger × mode (× options, never folded across different ones)."""
    cells = fold_cells(runs)
    keys = {c.key for c in cells}
    kinds = [k.value for k in FAILURE_KINDS if any(c.by_kind.get(k.value) or c.excluded_real.get(k.value) for c in cells)]
    rows = []
    for c in cells:
        lost = "-" if not c.used else (f"{c.lost_min}" if c.lost_min == c.lost_max else f"{c.lost_min}-{c.lost_max}")
        row: list[Any] = [c.verdict.value, c.variant, c.trigger, c.mode]
        row += [f"opts {c.key}"] if len(keys) > 1 else []
        row += [f"{c.used}/{c.trials}", lost, _loss(c)]
        row += [_num(c.by_kind.get(k, 0.0)) if c.used else "-" for k in kinds]
        row += [c.baseline_failed, f"{c.max_gap_ms:.0f}", f"{c.rollout_s:.1f}", _notes(c)]
        rows.append(row)
    headers = ["verdict", "variant", "trigger", "mode", *(["options"] if len(keys) > 1 else [])]
    headers += ["used", "lost", "loss", *[SHORT[k] for k in kinds], "baseline fail", "max gap ms", "settle s", "notes"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
