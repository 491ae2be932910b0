"""Markdown tables (tabulate): the comparison table from RunResults (one row per cell, verdict first) and the
summary/timeline tables of a plain `load`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any
from xml.etree import ElementTree as ET

from tabulate import tabulate

from harness.classify import FAILURE_KINDS
from harness.gate import Budget
from harness.model.options import grouped
from harness.results import RunResult
from harness.stats import pct_text
from harness.summary import RunSummary
from harness.verdict import CellVerdict, Verdict, fold_cells

SHORT = {
    "refused": "refused",
    "no_route": "no route",
    "reset": "reset",
    "idle_close": "idle close",
    "stream_reset": "stream rst",
    "goaway": "goaway",
    "conn_lost": "conn lost",
    "connect_timeout": "conn t/o",
    "read_timeout": "read t/o",
    "http_5xx": "5xx",
    "http_other": "4xx",
    "grpc_unavailable": "unavail",
    "grpc_deadline": "deadline",
    "grpc_other": "grpc other",
    "other": "other",
}

LEGEND = (
    "verdict: lossy = some counted rollout lost requests; lossless = none did, with at least 2 counted (1 when only 1 "
    "trial ran); inconclusive = fewer. used = trials left in: no rollout error (failed), no baseline failure but "
    "background (noisy), a generator that saw the whole window (unreliable). background = HTTP 5xx/4xx errors at a "
    "steady rate (not in a burst) before the trigger are the workload's own, not noise: the trial stays used and the "
    "used trials' baselines give the rate, with its 95 % upper bound. With a background, a rollout lost only when its "
    "window holds any other failure or more HTTP errors than that bound gives in 1 rollout in 1,000 (without one, any "
    "failure counts). rollouts = k/n lost: of the n rollouts that count (used trials, plus excluded ones whose window "
    "holds failures other than timeouts (refused, no route, reset, stream, HTTP or gRPC status) beyond the background, "
    "which a stalled generator cannot fake), k "
    "lost at least one request (beyond the background). P(rollout loses) = the chance that one rollout loses any "
    "request: for lossless its one-sided 95 % upper bound 1 - 0.05^(1/n), for lossy k/n with its exact two-sided 95 % "
    "interval (Clopper-Pearson), rounded outward. lost/rollout = mean requests lost per counted rollout with its 95 % "
    "Student-t interval over the rollouts. lost = fewest-most requests lost by one counted rollout from the trigger to "
    "the end of the tail (an excluded one: only its failures other than timeouts), background errors included; "
    "kind columns = mean per counted rollout. baseline fail = failures before the trigger, all trials. max gap = "
    "longest time inside the window with no request sent. settle s = trigger until old pods gone and endpoints settled."
)


def summary_table(s: RunSummary) -> str:
    """A plain `load`'s figures (RunSummary's docstrings define them). Every scheduled request is on one row: ok,
    failed (by kind), client errors, skipped or unfinished; `not ok` sums all but ok, the figure a budget counts."""
    rows: list[list[Any]] = [["requests scheduled", s.requests], ["ok", s.ok], ["failed", s.failed]]
    rows += [[f"  {k}", n] for k, n in s.by_kind.items()]
    rows += [["  HTTP codes", ", ".join(f"{c}×{n}" for c, n in s.http_codes.items())]] if s.http_codes else []
    rows += [
        ["failure % (of ok + failed)", f"{s.failure_pct:.3f}"],
        ["client errors (the generator's)", s.client_errors],
        ["skipped (in-flight cap)", s.skipped],
        ["unfinished (in flight at the end)", s.unfinished],
        ["not ok (budget): count, % of scheduled", f"{s.not_ok}, {s.not_ok_pct:.3f}"],
        ["longest failure streak ms", s.longest_outage_ms],
        ["seconds with a failure", s.disruption_seconds],
        ["latency p50 / p99 / max ms", f"{s.latency_p50_ms} / {s.latency_p99_ms} / {s.latency_max_ms}"],
        ["start lateness p50 / p99 ms", f"{s.lateness_p50_ms} / {s.lateness_p99_ms}"],
        ["achieved rate req/s", s.achieved_rate],
    ]
    return tabulate(rows, headers=["metric", "value"], tablefmt="github")


LOAD_CSV_FIELDS = (
    *("url", "mode", "rate", "requests", "ok", "failed", "skipped", "client_errors", "unfinished", "not_ok", "not_ok_pct"),
    *("failure_pct", "longest_outage_ms", "outage_start_s", "disruption_seconds", "latency_p50_ms", "latency_p99_ms"),
    *("latency_max_ms", "lateness_p50_ms", "lateness_p99_ms", "achieved_rate"),
)


def load_csv(url: str, mode: str, rate: float, s: RunSummary) -> str:
    """A plain `load` as one CSV row under a header that never changes with the data: LOAD_CSV_FIELDS (RunSummary's
    docstrings define them; outage_start_s blank without a failure), then `failed_<kind>` for every failure kind in
    classify's order (0 when none). HTTP codes and the timeline are in the JSON (--format json)."""
    figures = {"url": url, "mode": mode, "rate": rate, "not_ok": s.not_ok, "not_ok_pct": s.not_ok_pct} | asdict(s)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*LOAD_CSV_FIELDS, *(f"failed_{k.value}" for k in FAILURE_KINDS)])
    w.writerow([*("" if figures[f] is None else figures[f] for f in LOAD_CSV_FIELDS), *(s.by_kind.get(k.value, 0) for k in FAILURE_KINDS)])
    return out.getvalue()


def timeline_table(s: RunSummary) -> str:
    kinds = [k.value for k in FAILURE_KINDS if any(k.value in row for row in s.timeline)]
    rows = [[row["t"], row.get("ok", 0), *[row.get(k, 0) for k in kinds]] for row in s.timeline if any(row.get(k, 0) for k in kinds)]
    if not rows:
        return "(no failures in any second)"
    return tabulate(rows, headers=["second", "ok", *[SHORT[k] for k in kinds]], tablefmt="github")


def _num(x: float) -> str:
    """Three significant digits, whole numbers from 1,000 (0.0333 stays 0.0333, never 0.0)."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def rollouts_text(c: CellVerdict) -> str:
    return f"{c.rollouts_lost}/{c.rollouts} lost" if c.rollouts else "-"


def p_lose_text(c: CellVerdict) -> str:
    """P(rollout loses): "≤ 9.9 %" (lossless), "3/10: 6.6-66 %" (lossy), "-" (inconclusive)."""
    if c.p_lose_upper is not None:
        return f"≤ {pct_text(c.p_lose_upper, up=True)} %"
    if c.p_lose_ci is not None:
        return f"{c.rollouts_lost}/{c.rollouts}: {pct_text(c.p_lose_ci[0], up=False)}-{pct_text(c.p_lose_ci[1], up=True)} %"
    return "-"


def lost_per_rollout_text(c: CellVerdict) -> str:
    """Mean lost requests per rollout [95 % t-interval]; says so when every rollout lost the same."""
    if c.verdict is Verdict.INCONCLUSIVE:
        return "-"
    ci = c.lost_per_rollout_ci
    if ci is None or c.verdict is Verdict.LOSSLESS:
        return _num(c.lost_per_rollout_mean)
    if ci[0] == ci[1]:
        return f"{_num(c.lost_per_rollout_mean)} (same in all {c.rollouts})"
    return f"{_num(c.lost_per_rollout_mean)} [{_num(ci[0])}, {_num(ci[1])}]"


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


NO_BUDGET = Budget()


def compare_table(runs: list[RunResult], budget: Budget = NO_BUDGET) -> str:
    """One row per variant × trigger × mode (× options, never folded across different ones); with a budget, a
    first column says which cells break it; a background column when some cell has one."""
    cells = fold_cells(runs)
    label = _option_labels(runs)
    kinds = [k.value for k in FAILURE_KINDS if any(c.by_kind.get(k.value) or c.excluded_real.get(k.value) for c in cells)]
    background = any(c.background.upper is not None for c in cells)
    rows = []
    for c in cells:
        lost = "-" if not c.rollouts else (f"{c.lost_min}" if c.lost_min == c.lost_max else f"{c.lost_min}-{c.lost_max}")
        row: list[Any] = [f"OVER: {budget.breach(c)}" if budget.breach(c) else "ok"] if budget.active else []
        row += [c.verdict.value, c.variant, c.trigger, c.mode]
        row += [label.get(c.key, f"opts {c.key}")] if label else []
        row += [f"{c.used}/{c.trials}", rollouts_text(c), p_lose_text(c), lost_per_rollout_text(c), lost]
        row += [_num(c.by_kind.get(k, 0.0)) if c.rollouts else "-" for k in kinds]
        row += [c.background.text() or "-"] if background else []
        row += [c.baseline_failed, f"{c.max_gap_ms:.0f}", f"{c.rollout_s:.1f}", _notes(c)]
        rows.append(row)
    headers = [*(["budget"] if budget.active else []), "verdict", "variant", "trigger", "mode", *(["options"] if label else [])]
    headers += ["used", "rollouts", "P(rollout loses)", "lost/rollout", "lost", *[SHORT[k] for k in kinds]]
    headers += [*(["background"] if background else []), "baseline fail", "max gap ms", "settle s", "notes"]
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _option_labels(runs: list[RunResult]) -> dict[str, str]:
    """Provenance key -> the options, cluster settings and content hashes that differ between the keys present (e.g.
    `client=pod`), so rows that are not folded together say why; the key itself when only the harness version
    differs. Empty when every key is its own cell's only one and nothing but the cells' own manifests differ (each
    variant's hash differs from the others' by nature: it tells rows apart only within one variant)."""
    by_key: dict[str, dict[str, str]] = {}
    variant_of: dict[str, str] = {}
    cell_of: dict[str, tuple[str, str, str]] = {}
    for r in runs:
        opts = {k: str(v) for k, v in r.provenance.options.items() if k not in ("trials", "mode")}
        content = {k: v for k, v in r.provenance.content.items() if k != "commit"}
        by_key.setdefault(r.provenance.key(), opts | {f"cluster.{k}": v for k, v in r.provenance.cluster.items()} | content)
        variant_of[r.provenance.key()] = r.variant
        cell_of[r.provenance.key()] = (r.variant, r.trigger.value, r.mode.value)
    names = sorted({k for d in by_key.values() for k in d})

    def differs(name: str) -> bool:
        if name != "variant":
            return len({d.get(name, "-") for d in by_key.values()}) > 1
        seen: dict[str, set[str]] = {}
        for key, d in by_key.items():
            seen.setdefault(variant_of[key], set()).add(d.get(name, "-"))
        return any(len(hashes) > 1 for hashes in seen.values())

    differ = [k for k in names if k != "variant" and differs(k)]
    told = {(cell_of[key], tuple(d.get(k, "-") for k in differ)) for key, d in by_key.items()}
    if differs("variant") and len(told) < len(by_key):  # the manifests alone tell some rows of one cell apart
        differ.append("variant")
    several = len(by_key) > len({(r.variant, r.trigger, r.mode) for r in runs})
    if not differ and not several:
        return {}
    # an option a run did not record was at its default (RunOptions.provenance): only what a row set is named
    named = {key: ", ".join(f"{k}={d[k]}" for k in differ if k in d) for key, d in by_key.items()}
    return {key: named[key] or ("-" if differ else f"opts {key}") for key in by_key}


CSV_FIELDS = (
    *("verdict", "variant", "trigger", "mode", "key", "trials", "used", "rollouts", "rollouts_lost"),
    *("p_lose_upper", "p_lose_ci_low", "p_lose_ci_high", "lost_min", "lost_max"),
    *("lost_per_rollout_mean", "lost_per_rollout_ci_low", "lost_per_rollout_ci_high"),
    *("fail_pct_mean", "fail_pct_max", "fail_pct_ci_low", "fail_pct_ci_high", "baseline_failed", "max_gap_ms", "rollout_s"),
    *("background_rate", "background_upper"),
    *("over_budget", "why"),
)


def _pair(x: tuple[float, float] | None, digits: int) -> list[Any]:
    return [round(v, digits) for v in x] if x else ["", ""]


CELLS_SCHEMA = "rollout-harness/cells@3"


def cells_json(runs: list[RunResult], budget: Budget) -> str:
    """Every cell's verdict with all its fields (the CellVerdict docstrings are the definitions), the budget and
    which cells break it, and the settings behind them (run_settings); cells@2 had the settings as one line of text."""
    cells = [asdict(c) | {"over_budget": budget.breach(c)} for c in fold_cells(runs)]
    doc = {"schema": CELLS_SCHEMA, "settings": run_settings(runs), "budget": asdict(budget), "cells": cells}
    return json.dumps(doc, indent=1)


def run_settings(runs: list[RunResult]) -> list[dict[str, Any]]:
    """One entry per provenance key (a cell's `key`), in first-run order: the recorded options by RunOptions group
    (model.grouped), the cluster settings, versions and content hashes, with their recorded types."""
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        p = r.provenance
        entry = {"options": grouped(p.options), "cluster": p.cluster, "versions": p.versions, "content": p.content}
        out.setdefault(p.key(), {"key": p.key(), **entry})
    return list(out.values())


def cells_csv(runs: list[RunResult], budget: Budget) -> str:
    """One row per cell; the columns never change with the data: CSV_FIELDS, then `lost_<kind>` for every failure
    kind in classify's order (mean per counted rollout, 0 when none). Probabilities and the background rate and its
    upper bound (blank: no background) are 0-1, exact (not rounded outward as in the table)."""
    cells = fold_cells(runs)
    kinds = [k.value for k in FAILURE_KINDS]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*CSV_FIELDS, *(f"lost_{k}" for k in kinds)])
    for c in cells:
        row: list[Any] = [c.verdict.value, c.variant, c.trigger, c.mode, c.key, c.trials, c.used, c.rollouts, c.rollouts_lost]
        row += ["" if c.p_lose_upper is None else round(c.p_lose_upper, 6), *_pair(c.p_lose_ci, 6), c.lost_min, c.lost_max]
        row += [round(c.lost_per_rollout_mean, 4), *_pair(c.lost_per_rollout_ci, 4)]
        row += [round(c.fail_pct_mean, 4), round(c.fail_pct_max, 4), *_pair(c.fail_pct_ci, 4), c.baseline_failed, c.max_gap_ms]
        row += [round(c.rollout_s, 2), round(c.background.rate, 8), "" if c.background.upper is None else round(c.background.upper, 8)]
        row += [budget.breach(c), c.why, *(round(c.by_kind.get(k, 0.0), 4) for k in kinds)]
        w.writerow(row)
    return out.getvalue()


def junit_xml(runs: list[RunResult], budget: Budget) -> str:
    """One testcase per cell: a failure when it breaks the budget; without a budget, inconclusive cells are
    skipped and the others pass (the verdict and loss are in system-out)."""
    cells = fold_cells(runs)
    suite = ET.Element("testsuite", name="rollout-harness", tests=str(len(cells)))
    failures = skipped = 0
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=f"rollout-harness.{c.variant}", name=f"{c.trigger} ({c.mode})")
        case.set("time", f"{c.rollout_s:.1f}")
        if why := budget.breach(c):
            failures += 1
            ET.SubElement(case, "failure", message=why, type="over-budget").text = f"{budget.describe()}; {c.why}"
        elif c.verdict is Verdict.INCONCLUSIVE:
            skipped += 1
            ET.SubElement(case, "skipped", message=c.why)
        out = f"{c.verdict.value}: {c.why}; P(rollout loses) {p_lose_text(c)}; lost/rollout {lost_per_rollout_text(c)}"
        ET.SubElement(case, "system-out").text = f"{out}; lost {c.lost_min}-{c.lost_max}"
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
