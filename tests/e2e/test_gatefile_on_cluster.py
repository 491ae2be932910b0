"""The gate file as a CI gate on a real cluster: `compare --no-up` in a directory holding a rollout-harness.toml runs
what it says, and exits 1 for cart-naive as written and 0 with the overlays that make it lossless (the known answers
of test_workload.py's overlay test). Two compares of one variant × set-image × 1 trial."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.cli import main
from harness.gate import EXIT_OVER_BUDGET
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
CART = Path(__file__).parents[1] / "examples" / "cart-naive.yaml"


def _gate(directory: Path, variant: str) -> None:
    (directory / "cart-naive.yaml").write_text(CART.read_text())
    (directory / "rollout-harness.toml").write_text(
        f'workload = "cart-naive.yaml"\nvariants = ["{variant}"]\ntriggers = ["set-image"]\ntrials = 1\nrate = 150\n'
        f'out = "out-{variant}"\npictures = false\n[budget]\nmax_failures = 0\n'
    )


@pytest.mark.parametrize(("variant", "code"), [("as-is", EXIT_OVER_BUDGET), ("readiness-tcp+prestop-sleep", 0)])
async def test_the_gate_file_gates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Target, variant: str, code: int) -> None:
    _gate(tmp_path, variant)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["compare", "--no-up"]) == code, variant
    (r,) = load_results(tmp_path / f"out-{variant}")
    assert r.variant == ("cart-naive" if variant == "as-is" else f"cart-naive+{variant}"), r.variant
    assert (r.lost > 0) == (code == EXIT_OVER_BUDGET), r.lost_by_kind
