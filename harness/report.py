"""Markdown tables (tabulate) and the versioned JSON result schema.

JSON schema `rollout-harness/run@1` (one object per run):
  schema, name, variant, trigger, mode, trial, rate, unreliable (bool), unreliable_reason,
  summary: RunSummary fields (requests, ok, failed, skipped, by_kind{kind: n}, http_codes{code: n},
           failure_pct, longest_outage_ms, outage_start_s, disruption_seconds, latency_* ms,
           lateness_* ms, achieved_rate, timeline[{t, ok, <kind>: n}]),
  generator: {cpu_seconds, cpu_ms_per_1k, wall_seconds},
  rollout: {duration_s, events[{t, kind, object, detail}]} (cluster runs only),
  attribution: {by_pod_state{state: n}, endpoint_lag_ms[]} (cluster runs only).
Times inside a run are seconds after the load's t0.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tabulate import tabulate

from harness.classify import FAILURE_KINDS
from harness.errors import UsageError
from harness.summary import RunSummary

SCHEMA = "rollout-harness/run@1"
_SHORT = {
    "refused": "refused",
    "no_route": "no route",
    "reset": "reset",
    "connect_timeout": "conn t/o",
    "read_timeout": "read t/o",
    "http_5xx": "5xx",
    "http_other": "4xx",
    "other": "other",
}


def summary_table(s: RunSummary) -> str:
    rows: list[list[Any]] = [["requests", s.requests], ["ok", s.ok], ["failed", s.failed], ["failure %", f"{s.failure_pct:.3f}"]]
    rows += [[f"  {k}", n] for k, n in s.by_kind.items()]
    rows += [["  HTTP codes", ", ".join(f"{c}×{n}" for c, n in s.http_codes.items())]] if s.http_codes else []
    rows += [
        ["skipped (in-flight cap)", s.skipped],
        ["longest outage ms", s.longest_outage_ms],
        ["disruption-seconds", s.disruption_seconds],
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
    return tabulate(rows, headers=["second", "ok", *[_SHORT[k] for k in kinds]], tablefmt="github")


def run_json(summary: RunSummary, **meta: Any) -> dict[str, Any]:
    return {"schema": SCHEMA, **meta, "summary": asdict(summary)}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")


def load_runs(directory: Path) -> list[dict[str, Any]]:
    if not directory.is_dir():
        raise UsageError(f"no such results directory: {directory}")
    runs = []
    for p in sorted(directory.rglob("*.json"), key=lambda q: (q.stat().st_mtime, q.name)):  # run order
        try:
            doc = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise UsageError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from e
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            runs.append(doc)
    if not runs:
        raise UsageError(f"no {SCHEMA} results in {directory}")
    return runs


def _spread(values: Sequence[float], digits: int = 0) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}" if digits else f"{values[0]:g}"
    if digits:
        return f"{statistics.mean(values):.{digits}f} ±{statistics.stdev(values):.{digits}f}"
    return f"{statistics.mean(values):.4g} ±{statistics.stdev(values):.2g}"


def compare_table(runs: list[dict[str, Any]]) -> str:
    """One row per variant × trigger × mode; trials are folded into mean ± stdev."""
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r.get("variant", "-"), r.get("trigger", "-"), r.get("mode", "-")), []).append(r)
    kinds = [k.value for k in FAILURE_KINDS if any(r["summary"]["by_kind"].get(k.value) for r in runs)]
    rows = []
    for (variant, trigger, mode), rs in cells.items():
        sums = [r["summary"] for r in rs]
        errors = [r for r in rs if r.get("error")]
        bad = [r for r in rs if r.get("unreliable") or r.get("error")]
        row: list[Any] = [variant, trigger, mode, len(rs), _spread([s["requests"] for s in sums])]
        if len(bad) == len(rs):
            row += ["rollout failed" if errors else "unreliable"] * (len(kinds) + 4)
        else:
            good = [r["summary"] for r in rs if not r.get("unreliable")]
            row += [_spread([s["failed"] for s in good])]
            row += [_spread([s["by_kind"].get(k, 0) for s in good]) for k in kinds]
            row += [
                _spread([s["failure_pct"] for s in good], 2),
                _spread([s["longest_outage_ms"] for s in good]),
                _spread([s["disruption_seconds"] for s in good]),
            ]
        row += [_spread([r.get("rollout", {}).get("duration_s", 0.0) for r in rs])]
        row += [_spread([round(r["summary"]["lateness_p99_ms"]) for r in rs])]
        notes = [f"{len(bad) - len(errors)} unreliable"] if len(bad) > len(errors) else []
        notes += [f"rollout failed: {errors[0]['error'][:70]}"] if errors else []
        row += ["; ".join(notes)]
        rows.append(row)
    headers = [
        "variant",
        "trigger",
        "mode",
        "trials",
        "requests",
        "failed",
        *[_SHORT[k] for k in kinds],
        "fail %",
        "longest outage ms",
        "disrupt s",
        "rollout s",
        "gen late p99 ms",
        "note",
    ]
    return tabulate(rows, headers=headers, tablefmt="github")
