"""Known-answer rollout tests on the real cluster (issue 4). A harness that reports zero everywhere is blind:
the lossy configuration must lose requests, the best-practice one must lose none, in each of 3 trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.actions import Trigger
from harness.experiment import CellSpec, RunOptions, run_cell
from harness.kube import Kube
from harness.load import ConnMode
from harness.report import write_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
# every run's JSON is kept under results/e2e/ (gitignored) so a failure can be read afterwards
OPTS = RunOptions(rate=150, baseline=2.0, tail=3.0, rollout_timeout=180, out=Path("results/e2e"))


async def test_naive_set_image_loses_requests(kube: Kube) -> None:
    doc = await run_cell(kube, CellSpec("naive", Trigger.SET_IMAGE, ConnMode.NEW), OPTS)
    write_json(OPTS.out / f"{doc['name']}.json", doc)
    s = doc["summary"]
    assert s["by_kind"].get("refused", 0) + s["by_kind"].get("reset", 0) >= 1, s["by_kind"]
    assert s["longest_outage_ms"] >= 0 and s["disruption_seconds"] >= 1
    assert doc["rollout"]["duration_s"] > 0
    states = [e["state"] for e in doc["rollout"]["events"] if e["source"] == "pod"]
    assert "terminating" in states and "ready" in states, "the watcher must see pods come and go"


def _sporadic(summary: dict[str, Any]) -> bool:
    """At most 2 connect timeouts and nothing else: seen in about 1 of 60 runs of lossless variants on this 2-core VM
    (a SYN and its retransmit lost; conntrack shows no insert failures). A systematic loss is never this small."""
    return 0 < summary["failed"] <= 2 and set(summary["by_kind"]) == {"connect_timeout"}


@pytest.mark.parametrize("trigger", [Trigger.SET_IMAGE, Trigger.DRAIN])
async def test_best_practice_loses_nothing(kube: Kube, trigger: Trigger) -> None:
    for trial in (1, 2, 3):
        doc = await run_cell(kube, CellSpec("best-practice", trigger, ConnMode.NEW, trial), OPTS)
        write_json(OPTS.out / f"{doc['name']}.json", doc)
        if _sporadic(doc["summary"]):  # repeat the trial once; the repeat must be clean
            print(f"trial {trial}: sporadic {doc['summary']['by_kind']} at {doc['failure_samples']}; repeating it")
            doc = await run_cell(kube, CellSpec("best-practice", trigger, ConnMode.NEW, trial), OPTS)
            write_json(OPTS.out / f"{doc['name']}-repeat.json", doc)
        s = doc["summary"]
        assert s["requests"] > 500, s
        assert s["failed"] == 0, f"trial {trial}: {s['by_kind']} {doc['failure_samples'][:3]}"
        served = {r for r in doc["attribution"]["endpoint_lag_ms"]}
        assert served, "no pod left the endpoints during the rollout: the trigger did nothing"
