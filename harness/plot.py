"""Pictures (matplotlib, the optional `plot` extra): one PNG per run, one overview PNG per compare.

Run picture, top: requests per 100 ms by actual start, stacked by outcome (ok, then each failure kind); the
phases shaded and the harness's marks (trigger, complete, old pods gone, settled) as lines. Bottom: one row per
pod, coloured by its state over time, with the moment it left the ready endpoints marked.
Overview: per cell, the mean loss % over counted rollouts with its 95 % interval, coloured by verdict.

Pictures are drawn after the results they show are saved, through best_effort: one that fails is a warning.
`report --pictures DIR` draws them again from saved results (redraw): from the records kept beside a result, or
else from its per-second timeline.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from harness.classify import FAILURE_KINDS
from harness.model import EndpointState, PodState, Source
from harness.records import RequestRecord, read_records
from harness.results import RunResult
from harness.verdict import Verdict, fold_cells

log = logging.getLogger("harness.plot")

BIN = 0.1  # s
KIND_COLORS = {
    "ok": "#9ccc9c",
    "refused": "#d62728",
    "no_route": "#9467bd",
    "reset": "#ff7f0e",
    "idle_close": "#ffbb78",
    "stream_reset": "#bcbd22",
    "goaway": "#dbdb8d",
    "conn_lost": "#ad494a",
    "connect_timeout": "#8c564b",
    "read_timeout": "#e377c2",
    "http_5xx": "#1f77b4",
    "http_other": "#17becf",
    "grpc_unavailable": "#393b79",
    "grpc_deadline": "#f7b6d2",
    "grpc_other": "#637939",
    "other": "#7f7f7f",
}
STATE_COLORS = {
    PodState.PENDING: "#dddddd",
    PodState.SCHEDULED: "#cccccc",
    PodState.RUNNING: "#f3d27a",
    PodState.READY: "#5aae61",
    PodState.TERMINATING: "#e08214",
}
VERDICT_COLORS = {Verdict.LOSSLESS: "#5aae61", Verdict.LOSSY: "#d6604d", Verdict.INCONCLUSIVE: "#bbbbbb"}


def best_effort(path: Path, draw: Callable[[], None]) -> bool:
    """Draw the picture `draw` saves in `path`; if that fails (matplotlib, a full disk), say so in a warning: a picture
    never costs a result or the run. Whether it was drawn."""
    try:
        draw()
    except Exception as e:  # whatever matplotlib raises
        log.warning("picture %s not drawn: %s: %s", path, type(e).__name__, e)
        return False
    return True


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    """pyplot on the Agg backend (no display needed); typed Any: only this module draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_png(result: RunResult, records: Iterable[RequestRecord], path: Path) -> None:
    """The run picture from its records: requests per 100 ms by actual start."""
    bins: dict[int, Counter[str]] = {}
    for r in records:
        if r.kind in ("skipped", "unfinished"):
            continue
        bins.setdefault(int(r.start / BIN), Counter())[r.kind] += 1
    _run_picture(result, bins, BIN, f"requests / {int(BIN * 1000)} ms", path)


def saved_run_png(result: RunResult, path: Path) -> None:
    """The run picture from the saved result alone (its records not kept): requests per second of scheduled time,
    from the summary's timeline (coarser than run_png's 100 ms); phases, marks and pods as there."""
    rows = result.summary.timeline if result.summary is not None else []
    bins = {row["t"]: Counter({k: n for k, n in row.items() if k not in ("t", "skipped")}) for row in rows}
    _run_picture(result, bins, 1.0, "requests / s (records not kept)", path)


def _run_picture(result: RunResult, bins: dict[int, Counter[str]], width: float, ylabel: str, path: Path) -> None:
    """bins: bin index (time / width) -> requests by outcome."""
    plt = _pyplot()
    n = max(bins, default=0) + 1
    kinds = ["ok", *(k.value for k in FAILURE_KINDS if any(k.value in c for c in bins.values()))]
    pods = sorted({e.name for e in result.events if e.source is Source.POD}, key=lambda p: min(e.t for e in result.events if e.name == p))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 4.5 + 0.22 * len(pods)), sharex=True, gridspec_kw={"height_ratios": [3, 0.6 + 0.25 * len(pods)]}
    )
    x = [i * width for i in range(n)]
    base = [0] * n
    for k in kinds:
        ys = [bins.get(i, Counter())[k] for i in range(n)]
        top.bar(x, ys, width=width, bottom=base, align="edge", color=KIND_COLORS.get(k, "#7f7f7f"), label=k, linewidth=0)
        base = [b + y for b, y in zip(base, ys, strict=True)]
    w = result.window
    if w is not None:
        top.axvspan(w.trigger_s, w.settled_s, color="#888888", alpha=0.12, zorder=3, label="disruption", linewidth=0)
        for t, name in (
            (w.trigger_s, "trigger"),
            (w.complete_s, "complete"),
            (w.old_pods_gone_s, "old pods gone"),
            (w.settled_s, "settled"),
        ):
            top.axvline(t, color="#444444", linewidth=0.8, linestyle="--")
            top.text(t, top.get_ylim()[1], f" {name}", rotation=90, va="top", ha="left", fontsize=7, color="#444444")
    top.set_ylabel(ylabel)
    top.set_title(f"{result.variant} × {result.trigger} ({result.mode}, trial {result.trial}): {result.status.value}, lost {result.lost}")
    top.legend(loc="lower left", fontsize=7, ncol=len(kinds) + 1)
    end = w.end_s if w is not None else n * width
    for row, pod in enumerate(pods):
        evs = sorted((e for e in result.events if e.source is Source.POD and e.name == pod), key=lambda e: e.t)
        for e, nxt in zip(evs, [*evs[1:], None], strict=True):
            if e.state == PodState.DELETED:
                continue
            stop = nxt.t if nxt is not None else end
            bottom.barh(row, stop - e.t, left=e.t, color=STATE_COLORS.get(PodState(e.state), "#999999"), height=0.7, linewidth=0)
        ready = False
        for e in sorted((e for e in result.events if e.source is Source.ENDPOINT and e.name == pod), key=lambda e: e.t):
            if ready and e.state != EndpointState.READY:  # left the ready endpoints (a new pod's first not-ready entry is not)
                bottom.plot([e.t], [row], marker="|", color="black", markersize=12, markeredgewidth=2)
            ready = e.state == EndpointState.READY
    bottom.set_yticks(range(len(pods)), [p.rsplit("-", 1)[-1] for p in pods], fontsize=7)
    bottom.set_ylabel("pods")
    bottom.set_xlabel("seconds since the load started (| = left the ready endpoints)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATE_COLORS.values()]
    bottom.legend(handles, list(STATE_COLORS), loc="upper right", fontsize=7, ncol=len(STATE_COLORS))
    _save(plt, fig, path)


def redraw(saved: list[tuple[Path, RunResult]], into: Path) -> int:
    """The pictures of saved results (file, result) again, in `into`: one per run that has a window, from the records
    kept beside its file (<stem>.records.jsonl, as `--keep-records` leaves them) when there, else from its timeline
    (saved_run_png); an overview of more than one. Each through best_effort; returns how many were drawn."""
    drawn = 0
    seen: Counter[str] = Counter()
    for file, r in saved:
        if r.window is not None:
            seen[r.name] += 1  # the same run name from a second directory is drawn as <name>-2
            path = into / (f"{r.name}.png" if seen[r.name] == 1 else f"{r.name}-{seen[r.name]}.png")
            drawn += best_effort(path, functools.partial(_redraw_run, r, file.with_name(f"{file.stem}.records.jsonl"), path))
    if len(saved) > 1:
        drawn += best_effort(into / "overview.png", functools.partial(overview_png, [r for _, r in saved], into / "overview.png"))
    return drawn


def _redraw_run(result: RunResult, records: Path, path: Path) -> None:
    w = result.window
    if w is None or not records.is_file():
        saved_run_png(result, path)
    else:
        run_png(result, (r for r in read_records(records) if w.start_s <= r.start < w.end_s), path)


def overview_png(runs: list[RunResult], path: Path) -> None:
    plt = _pyplot()
    cells = fold_cells(runs)
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.35 * len(cells)))
    labels = [f"{c.variant} × {c.trigger} ({c.mode})" for c in cells]
    for i, c in enumerate(cells):
        lo, hi = c.fail_pct_ci or (c.fail_pct_mean, c.fail_pct_mean)
        ax.barh(i, c.fail_pct_mean, color=VERDICT_COLORS[c.verdict], height=0.6)
        if c.fail_pct_ci:
            ax.errorbar(c.fail_pct_mean, i, xerr=[[c.fail_pct_mean - lo], [hi - c.fail_pct_mean]], color="black", capsize=3, linewidth=1)
        ax.text(max(hi, 0) + 0.2, i, f"{c.verdict.value} {c.used}/{c.trials}", va="center", fontsize=8)
    ax.set_yticks(range(len(cells)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("lost requests, % of the window (mean over counted rollouts, 95 % t-interval)")
    _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> None:
    try:
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
