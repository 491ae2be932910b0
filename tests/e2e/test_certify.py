"""Certification on the real cluster, as a user runs it: `compare --certify 50%` (5 rollouts that lose nothing show
P(a rollout loses) <= 45 %). naive is lossy on its first rollout and rolls no more; best-practice rolls in series
(trials 2-3 and 4-5 each on one set-up, set-image back and forth), loses nothing in any of them and is certified; the
exit status is the gate's (1: naive is not certified). No retry: every rollout counts. Its 5 best-practice rollouts are
also the known answer of best-practice × set-image with new connections (test_known_answers.py has the others)."""

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
    assert sorted(runs) == [1, 2, 3, 4, 5]
    # best-practice × set-image × new connections' known answer (test_known_answers.py asserts the same of the other
    # triggers and modes): every rollout used, lost nothing, reached a pod the trigger removed, and its window covered
    # the old pods' deletion
    for r in runs.values():
        why = f"{r.name}: {r.status.value} {r.reasons} lost {r.lost_by_kind} sent {r.window_sent}"
        assert r.status is Status.USED and r.lost == 0 and r.window_sent > 500, why
        assert r.attribution is not None and r.attribution.endpoint_lag_ms, f"{r.name}: the load never reached a pod the trigger removed"
        terminated = [e for e in r.events if e.source == "pod" and e.state == "deleted"]
        assert r.window is not None and terminated and all(e.t <= r.window.settled_s for e in terminated), why
    # as compare runs a matrix: a set-up made during the tail of the rollout before (RunOptions.ahead)
    assert runs[2].setup_ahead_s > 0 and runs[4].setup_ahead_s > 0, {t: r.setup_ahead_s for t, r in runs.items()}
    series = {t for t, r in runs.items() if r.overlap.startswith("rolled on the set-up of")}
    assert series == {3, 5}, {t: r.overlap for t, r in runs.items()}  # 2-3 and 4-5 each shared one set-up
    assert all(r.window is not None and r.window.start_s > 0 for t, r in runs.items() if t in series)
    assert {r.provenance.content["variant"] for r in runs.values()} == {runs[1].provenance.content["variant"]}
