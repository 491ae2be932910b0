"""Certification on the real cluster, as a user runs it: `compare --certify 50%` (5 rollouts that lose nothing show
P(a rollout loses) <= 45 %). naive is lossy on its first rollout and rolls no more; best-practice rolls in series
(trials 2-3 and 4-5 each on one set-up, set-image back and forth), loses nothing in any of them and is certified; the
exit status is the gate's (1: naive is not certified). No retry: every rollout counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.model import Status
from harness.results import load_results
from harness.target import Target

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_certify_stops_naive_at_once_and_certifies_best_practice(
    target: Target, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cert"
    argv = ["compare", "--variants", "naive,best-practice", "--triggers", "set-image", "--certify", "50%", "--no-up"]
    argv += ["--rate", "150", "--baseline", "2s", "--no-pictures", "--format", "json", "--out", str(out)]
    assert main(argv) == 1  # naive is not certified
    cells = {c["variant"]: c for c in json.loads(capsys.readouterr().out)["cells"]}
    naive, best = cells["naive"], cells["best-practice"]
    assert naive["verdict"] == "lossy" and (naive["rollouts"], naive["rollouts_lost"]) == (1, 1), naive
    assert naive["over_budget"].startswith("not certified"), naive
    assert best["verdict"] == "lossless" and best["rollouts"] >= 5 and best["p_lose_upper"] <= 0.5, best
    assert best["over_budget"] == "", best
    runs = {r.trial: r for r in load_results(out) if r.variant == "best-practice"}
    assert sorted(runs) == [1, 2, 3, 4, 5] and all(r.status is Status.USED and r.lost == 0 for r in runs.values())
    series = {t for t, r in runs.items() if r.overlap.startswith("rolled on the set-up of")}
    assert series == {3, 5}, {t: r.overlap for t, r in runs.items()}  # 2-3 and 4-5 each shared one set-up
    assert all(r.window is not None and r.window.start_s > 0 for t, r in runs.items() if t in series)
    assert {r.provenance.content["variant"] for r in runs.values()} == {runs[1].provenance.content["variant"]}
