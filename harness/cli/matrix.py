"""`run` (one variant × trigger cell) and `compare` (a variants × triggers × modes matrix with verdicts): flags into
RunOptions and cells, checked before any cluster work; then harness.matrix.run_matrix on the cluster, and the
cells printed and gated (harness.cli.output)."""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace

from harness import progress
from harness.cli import gatefile, output, runflags
from harness.cli.runflags import Where
from harness.cli.verb import Verb, positive, writable_dir
from harness.errors import UsageError
from harness.manifests import workload_name
from harness.matrix import Progress, run_matrix
from harness.model import CellSpec, ConnMode, RunOptions, Schedule, Trigger
from harness.results import RunResult
from harness.stats import pct_text

log = logging.getLogger("harness")

DEFAULT_VARIANTS = ("naive", "readiness", "readiness-prestop", "graceful-app", "best-practice")
DEFAULT_TRIGGERS = ("set-image", "drain")
COMPARE_TRIALS = 3  # a verdict needs more than one run: 3 gives a t-interval and a 2-of-3 lossless claim


def add_run_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--variant", default=None, help="(default naive; with --workload: as-is)")
    r.add_argument("--trigger", default="set-image", help=f"one of {', '.join(t.value for t in Trigger)} (default %(default)s)")
    r.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value, help="(default %(default)s)")
    r.add_argument(
        "--trials", type=positive(int), default=None, help=f"(default {Schedule().trials}; with --certify: what it needs + 20 %%)"
    )
    runflags.add_arguments(r)


def add_compare_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--variants", default=None, help=f"comma-separated (default {','.join(DEFAULT_VARIANTS)})")
    r.add_argument("--triggers", default=",".join(DEFAULT_TRIGGERS), help="comma-separated (default %(default)s)")
    r.add_argument("--modes", default=ConnMode.NEW.value, help="comma-separated: new,keepalive,h2,grpc (default %(default)s)")
    r.add_argument(
        "--trials",
        type=positive(int),
        default=None,
        help=f"runs per cell (default {COMPARE_TRIALS}; with --certify: at most what it needs + 20 %%)",
    )
    r.add_argument(
        "--stop-early",
        action="store_true",
        help="adaptive trials: no more trials for a cell once a used trial lost >= 10 requests (failures other than timeouts)",
    )
    runflags.add_arguments(r)


async def run(args: argparse.Namespace) -> int:
    opts = runflags.options(args, Schedule().trials)
    specs = [args.variant if args.variant is not None else ("as-is" if opts.subject.workload is not None else "naive")]
    cells = _cells(opts, specs, [args.trigger], [args.mode])
    return await run_cells(opts, cells, runflags.where(args), output.Rendering.of(args))


async def compare(args: argparse.Namespace) -> int:
    args = gatefile.applied(args)
    opts, cells = compare_plan(args)
    return await run_cells(opts, cells, runflags.where(args), output.Rendering.of(args))


def compare_plan(args: argparse.Namespace) -> tuple[RunOptions, list[CellSpec]]:
    """compare's options and cells from its flags (and a gate file's values: harness.cli.gatefile)."""
    opts = runflags.options(args, COMPARE_TRIALS, stop_early=args.stop_early)
    default = "as-is" if opts.subject.workload is not None else ",".join(DEFAULT_VARIANTS)
    specs = _split("--variants", args.variants if args.variants is not None else default)
    return opts, _cells(opts, specs, _split("--triggers", args.triggers), _split("--modes", args.modes))


def _split(flag: str, text: str) -> list[str]:
    """The items of a comma-separated list flag: at least one, each once (an empty list would run nothing, or the
    defaults, and pass a gate; a repeated cell would run its trials twice under the same names)."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UsageError(f"{flag} {text!r}: names nothing; give one or more, comma-separated")
    if twice := sorted({x for x in items if items.count(x) > 1}):
        raise UsageError(f"{flag} {text!r}: {', '.join(twice)} given twice (for more runs of a cell, raise --trials)")
    return items


def _cells(opts: RunOptions, specs: list[str], triggers: list[str], modes: list[str]) -> list[CellSpec]:
    """The matrix, trials outermost. A spec is a variant's name, or with a workload its overlays (a+b); the names are
    checked when they load (run_cells)."""
    workload = opts.subject.workload
    variants = [workload_name(workload, tuple(s.split("+"))) for s in specs] if workload is not None else specs
    try:
        trig = [Trigger(t) for t in triggers]
    except ValueError:
        raise UsageError(f"unknown trigger in {triggers}; available: {', '.join(t.value for t in Trigger)}") from None
    try:
        mds = [ConnMode(m) for m in modes]
    except ValueError:
        raise UsageError(f"unknown mode in {modes}; available: {', '.join(m.value for m in ConnMode)}") from None
    trials = range(1, opts.schedule.trials + 1)
    return [CellSpec(v, t, m, k) for k in trials for v in variants for t in trig for m in mds]


async def run_cells(opts: RunOptions, cells: list[CellSpec], where: Where, how: output.Rendering) -> int:
    """Check everything that can be checked here, run the cells on the cluster, print and gate them."""
    from harness.measure import CellRunner
    from harness.target import connect

    check_cells(opts, cells)
    if opts.output.out:
        writable_dir(opts.output.out, "--out")
    how = replace(how, budget=replace(how.budget, certify=opts.schedule.certify))
    how.check_writable()
    t0 = time.monotonic()
    target = await connect(where.no_up, where.kubeconfig, where.context)
    try:
        target.check(opts, {c.trigger for c in cells})
        results = await run_matrix(CellRunner(target, opts), cells, opts.schedule, opts.output.out, _announcer(t0))
    finally:
        target.kube.close()
        if (line := progress.status()) is not None:
            line.close()  # the tables go to the same terminal
    out = opts.output.out
    if out and opts.output.pictures and len(results) > 1:
        from harness import plot

        if plot.available():
            path = out / "overview.png"
            plot.best_effort(path, lambda: plot.overview_png(results, path))
        else:
            log.info("pictures: install rollout-harness[plot] (matplotlib) for a PNG per run and an overview")
    return output.emit(results, how, _footer(results, time.monotonic() - t0, opts.schedule))


def check_cells(opts: RunOptions, cells: list[CellSpec]) -> None:
    """UsageError unless the options go with the cells and every variant (or workload + overlays) loads and converts:
    what can be checked before any cluster work."""
    from harness.cell import cell_variant

    opts.validate(cells)
    for name in dict.fromkeys(c.variant for c in cells):
        cell_variant(opts, name)


def _certified(results: list[RunResult], schedule: Schedule) -> list[str]:
    """Per cell: the claim its rollouts reached against the target, with the rollouts and the time they took
    (trigger to settled, and the measured windows)."""
    from harness.verdict import fold_cells

    assert schedule.certify is not None
    out = []
    for c in fold_cells(results):
        runs = [r for r in results if (r.variant, r.trigger, r.mode) == (c.variant, c.trigger, c.mode) and r.window]
        rolling = sum(r.window.settled_s - r.window.trigger_s for r in runs if r.window)
        measured = sum(r.window.own_s for r in runs if r.window)
        target = f"≤ {100 * schedule.certify:g} %"
        if c.p_lose_upper is not None and c.p_lose_upper <= schedule.certify:
            claim = f"certified: {c.why}, P(a rollout loses) ≤ {pct_text(c.p_lose_upper, up=True)} % (target {target})"
        else:
            claim = f"not certified {target}: {c.why}"
        out.append(
            f"{c.variant} × {c.trigger} ({c.mode}): {claim}; {len(runs)} rollouts, {rolling / 60:.1f} min trigger to settled, "
            f"{measured / 60:.1f} min measured"
        )
    return out


def _announcer(t0: float) -> Progress:
    def announce(i: int, n: int, cell: CellSpec) -> None:
        done = time.monotonic() - t0
        left = done / (i - 1) * (n - i + 1) if i > 1 else None
        eta = f", about {left / 60:.0f} min left" if left is not None else ""
        what = f"{cell.variant} × {cell.trigger.value} ({cell.mode.value}, trial {cell.trial})"
        log.info("[compare] cell %d/%d: %s%s", i, n, what, eta)
        if (line := progress.status()) is not None:
            line.cell(f"cell {i}/{n} {what}", left)

    return announce


def _footer(results: list[RunResult], wall: float, schedule: Schedule) -> str:
    """Where the wall time went (and, certifying, what each cell reached and in how many rollouts and how long)."""
    parallel = schedule.parallel
    measured = sum(r.window.own_s for r in results if r.window)
    setup = sum(r.setup_s - r.setup_ahead_s for r in results)  # what the next cell set up in a tail did not cost
    ahead = sum(r.setup_ahead_s for r in results)
    lines = _certified(results, schedule) if schedule.certify is not None else []
    return "\n".join([*lines, f"{len(results)} runs in {wall:.0f}s wall; "]) + (
        f"{100 * (wall - measured) / wall:.0f}% of it outside the measured windows ({setup:.0f}s setting up: deploy, pods "
        f"ready, the Service answering{f' (and {ahead:.0f}s more during the tails before)' if ahead else ''}; "
        f"{max(0.0, wall - measured - setup):.0f}s the rest: load start and stop, analysis, cleanup)"
        if parallel == 1
        else f"measured windows add up to {measured:.0f}s ({measured / wall:.2f} per wall second, {parallel} cells at a time)"
    )


RUN = Verb(
    "run",
    "one variant × trigger cell",
    "Measure one cell: deploy a variant (or your workload) with load running, fire the trigger, and report what the\n"
    "rollout lost. With no flags: the naive variant rolled by set-image on the harness's kind cluster.",
    "examples:\n"
    "  rollout-harness run --variant readiness --trigger drain --mode keepalive --trials 3\n"
    "  rollout-harness run --workload my-app.yaml --new-image repo/app:2 --kubeconfig ~/.kube/config --client pod",
    add_run_arguments,
    run,
)

COMPARE = Verb(
    "compare",
    "a variants × triggers matrix with verdicts",
    "Run every variant × trigger × mode cell, several trials each, and print a verdict per cell (lossy, lossless or\n"
    "inconclusive); with a budget, exit 1 if any cell breaks it (a CI gate).",
    "examples:\n"
    "  rollout-harness compare --variants naive,best-practice --triggers set-image,drain --trials 3\n"
    "  rollout-harness compare --variants best-practice --max-failures 0 --junit junit.xml",
    add_compare_arguments,
    compare,
)
