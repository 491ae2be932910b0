"""The gate file as a CI gate on a real cluster: `compare --no-up` in a directory holding a rollout-harness.toml runs
what it says. Known answers of your own workload with overlays: cart-naive (no probes, no preStop, an app slow to
listen) loses requests on set-image as written, and the same file with a TCP readinessProbe and a native preStop sleep
(two overlays) loses none; set-image without a new image is a pod-template change. The gate exits 1 for the file that
names both (they run side by side, `parallel = 2`, as tests/e2e/conftest.py's side_by_side runs a module's cells) and
0 for the one that names the lossless overlay alone: three cells, one trial each."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harness.cli import main
from harness.gate import EXIT_OVER_BUDGET
from harness.model import Status
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
CART = Path(__file__).parents[1] / "examples" / "cart-naive.yaml"


FIXED = "readiness-tcp+prestop-sleep"


def _gate(directory: Path, variants: list[str]) -> None:
    (directory / "cart-naive.yaml").write_text(CART.read_text())
    (directory / "rollout-harness.toml").write_text(
        f'workload = "cart-naive.yaml"\nvariants = {variants!r}\ntriggers = ["set-image"]\ntrials = 1\nrate = 150\n'
        f'parallel = 2\nout = "out"\npictures = false\n[budget]\nmax_failures = 0\n'
    )


@pytest.mark.parametrize(("variants", "code"), [(["as-is", FIXED], EXIT_OVER_BUDGET), ([FIXED], 0)])
async def test_the_gate_file_gates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Target, variants: list[str], code: int) -> None:
    _gate(tmp_path, variants)
    monkeypatch.chdir(tmp_path)
    assert await asyncio.to_thread(main, ["compare", "--no-up"]) == code, variants
    runs = {r.variant: r for r in load_results(tmp_path / "out")}
    assert set(runs) == {"cart-naive" if v == "as-is" else f"cart-naive+{v}" for v in variants}, set(runs)
    for r in runs.values():
        assert r.status is Status.USED and any(e.source == "pod" and e.state == "deleted" for e in r.events), r.reasons
    if "as-is" in variants:
        assert runs["cart-naive"].lost > 0, "no probes and an app slow to listen: new pods refuse connections"
    fixed = runs[f"cart-naive+{FIXED}"]
    assert fixed.lost == 0, fixed.lost_by_kind
