"""`variants`: the bundled variants (or the overlays for your workload file), each with what it changes."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.verb import Verb


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the bundled one)")
    p.add_argument("--workload", type=Path, default=None, help="list the overlays for your workload file instead")


async def run(args: argparse.Namespace) -> int:
    print(table(args.manifests, args.workload))
    return 0


def table(manifests: Path | None, workload: Path | None) -> str:
    """Variants, or with a workload its overlays, each applied to it (so a broken file or overlay shows here)."""
    from tabulate import tabulate

    from harness.manifests import OVERLAYS, available, describe, load_variant, load_workload

    if workload is not None:
        rows = []
        for name in available(manifests, OVERLAYS):
            load_workload(workload, None, (name,), manifests)
            rows.append((name, describe(name, manifests, OVERLAYS)))
    else:
        rows = [(v.name, v.description) for v in (load_variant(n, manifests) for n in available(manifests))]
    return tabulate(rows, headers=["overlay" if workload is not None else "variant", "description"], tablefmt="github")


VERB = Verb(
    "variants",
    "list the manifest variants with what each one changes",
    "List the variants run and compare can deploy, one line each on what it changes from the base; with --workload,\n"
    "the overlays that can be applied to your file instead (each is applied, so a broken one shows here).",
    "examples:\n  rollout-harness variants\n  rollout-harness variants --workload my-app.yaml",
    add_arguments,
    run,
)
