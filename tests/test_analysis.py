"""Window, phase and status accounting of one run, driven with synthetic records and events (a fake cluster
boundary): which request belongs to which phase, what a blind zero is, what makes a run noisy or unreliable,
and that the result survives its JSON round trip."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from harness.analysis import analyse
from harness.model import ConnMode, Event, Phase, PodState, Source, Status, Thresholds, Trigger
from harness.records import SKIPPED, RequestRecord
from harness.results import GeneratorStats, Provenance, RunResult, Window, load_results

RATE = 100.0
WINDOW = Window(trigger_s=3.0, complete_s=5.0, old_pods_gone_s=6.0, settled_s=7.0, end_s=9.0)
BASE = RunResult(
    "naive__set-image__new__t1", "naive", Trigger.SET_IMAGE, ConnMode.NEW, 1, Status.USED, (), Provenance({"rate": RATE}, {}, {})
)
GEN = GeneratorStats(sent=900, records=0, cpu_seconds=1.0, cpu_ms_per_1k=1.1, wall_seconds=9.0, scheduling="rr", max_in_flight=2000)


def records(kinds: dict[int, str] | None = None, starts: dict[int, float] | None = None, n: int = 900) -> list[RequestRecord]:
    """n requests at RATE; kinds/starts override the outcome or the actual start of chosen seqs."""
    out = []
    for i in range(n):
        sched = i / RATE
        start = (starts or {}).get(i, sched + 0.001)
        kind = (kinds or {}).get(i, "ok")
        out.append(RequestRecord(i, sched, start, start + 0.002, kind, 200 if kind == "ok" else 0, "web-a" if kind == "ok" else ""))
    return out


def run(recs: list[RequestRecord], events: list[Event] | None = None, gen: GeneratorStats = GEN) -> RunResult:
    return analyse(BASE, recs, WINDOW, events or [], RATE, Thresholds(max_lateness=0.5, max_gap=0.2), gen)


def test_load_after_the_window_end_counts_for_nothing() -> None:
    """Requests that start at or after end_s (the generator stops a little later) are in no phase, no count and no
    summary: the window's N does not grow with them and their failures are not the rollout's."""
    inside = run(records({800: "refused"}))
    after = run(records({800: "refused", 950: "refused", 990: "no_route"}, n=1000), gen=replace(GEN, sent=1000))
    assert after.lost == inside.lost == 1 and after.window_sent == inside.window_sent
    assert after.phases[Phase.TAIL] == inside.phases[Phase.TAIL] and after.summary == inside.summary
    assert after.status is Status.USED and after.generator is not None and after.generator.records == 1000


def test_phases_split_by_actual_start() -> None:
    # seq 250 is scheduled in the baseline (2.5 s) but starts at 3.05 s: it belongs to the disruption
    r = run(records({400: "refused", 401: "reset", 800: "connect_timeout", 250: "refused"}, starts={250: 3.05}))
    b, d, t = (r.phases[p] for p in (Phase.BASELINE, Phase.DISRUPTION, Phase.TAIL))
    assert (b.sent, d.sent, t.sent) == (299, 401, 200)
    assert (b.failed, d.failed, t.failed) == (0, 3, 1)
    assert d.by_kind == {"refused": 2, "reset": 1} and t.by_kind == {"connect_timeout": 1}
    assert r.lost == 4 and r.lost_by_kind == {"refused": 2, "reset": 1, "connect_timeout": 1}
    assert r.fail_pct == 100 * 4 / 601
    assert r.status is Status.USED and r.reasons == ()
    assert r.generator is not None and r.generator.records == 900


def test_baseline_failure_makes_the_run_noisy_and_is_not_lost() -> None:
    r = run(records({100: "connect_timeout", 500: "refused"}))
    assert r.status is Status.NOISY and "1 failed in the baseline" in r.reasons[0]
    assert r.lost == 1  # only the disruption failure


def test_blind_zero_is_unreliable_but_a_blind_loss_is_used() -> None:
    # the generator stalls 400 ms inside the window: requests 400-439 all start at once, late
    stalled = {i: 4.4 + (i - 400) * 1e-5 for i in range(400, 440)}
    blind = run(records(starts=stalled))
    assert blind.blindness is not None and blind.blindness.max_gap_ms >= 400
    assert blind.status is Status.UNRELIABLE and "blind zero" in blind.reasons[0]
    lossy = run(records({600: "refused"}, starts=stalled))
    assert lossy.status is Status.USED and lossy.lost == 1  # the loss it saw is real; its count is a lower bound


def test_no_gap_no_blindness() -> None:
    r = run(records())
    assert r.blindness is not None and r.blindness.max_gap_ms <= 11 and r.blindness.blind_ms == 0


def test_late_generator_is_unreliable() -> None:
    late = {i: i / RATE + 0.8 for i in range(300, 700)}  # 800 ms behind schedule for most of the window
    r = run(records(starts=late))
    assert r.status is Status.UNRELIABLE and any("lateness" in x for x in r.reasons)


def test_skipped_client_errors_and_missing_records_are_unreliable() -> None:
    r = run(records({500: SKIPPED, 501: "client_error"}))
    assert r.status is Status.UNRELIABLE
    assert any("1 requests skipped" in x for x in r.reasons) and any("client errors" in x for x in r.reasons)
    assert r.lost == 0 and r.phases[Phase.DISRUPTION].client_errors == 1  # a client error is not a lost request
    missing = run(records(n=890))
    assert any("10 of 900 request records missing" in x for x in missing.reasons)


def test_attribution_uses_actual_starts_and_relative_events() -> None:
    events = [Event(0.0, Source.POD, "web-a", PodState.READY), Event(3.5, Source.POD, "web-a", PodState.TERMINATING)]
    r = run(records({400: "refused"}), events)
    assert r.attribution is not None and r.attribution.states_at_failure == {"pod terminating": 1}


def test_json_round_trip(tmp_path: Path) -> None:
    r = run(records({400: "refused"}), [Event(3.5, Source.POD, "web-a", PodState.TERMINATING)])
    r = replace(r, setup_s=12.5)
    r.write(tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["schema"] == "rollout-harness/run@2" and doc["phases"]["disruption"]["failed"] == 1
    (back,) = load_results(tmp_path)
    assert back == r


def test_each_phase_counts_the_answers_by_pod() -> None:
    """The load's share per pod, before and after: a client pinned to old pods would show them in the tail."""
    recs = [replace(r, pod="web-old" if r.start < 3.0 else "web-new") if r.kind == "ok" else r for r in records({400: "refused"})]
    r = run(recs)
    b, d, t = (r.phases[p] for p in (Phase.BASELINE, Phase.DISRUPTION, Phase.TAIL))
    assert b.ok_by_pod == {"web-old": 300} and d.ok_by_pod == {"web-new": 399} and t.ok_by_pod == {"web-new": 200}
    assert sum(d.ok_by_pod.values()) == d.ok, "failures name no pod"


def test_tail_share_of_the_pods_the_rollout_created(tmp_path: Path) -> None:
    """scale (4 -> 1 -> 4) in miniature: web-a survives, web-b goes, web-c and web-d are made after the trigger. The
    tail's answers (200, 7-9 s) by pod give the new pods' share; a client pinned to web-a gives 0."""
    events = [
        Event(1.0, Source.POD, "web-x", PodState.PENDING),  # made before the trigger: not this rollout's
        Event(3.1, Source.POD, "web-b", PodState.TERMINATING),
        Event(4.0, Source.POD, "web-c", PodState.PENDING),
        Event(4.1, Source.POD, "web-d", PodState.SCHEDULED),  # its pending missed (a watch restarted): made all the same
        Event(4.5, Source.POD, "web-c", PodState.READY),
        Event(4.6, Source.ENDPOINT, "web-e", "not-ready"),  # an endpoint says nothing about who made a pod
    ]

    def tail_from(*pods: str) -> list[RequestRecord]:
        """Every answer from web-a, but the tail's, which come from `pods` in turn."""
        return [replace(r, pod=pods[r.seq % len(pods)] if r.start >= WINDOW.settled_s else "web-a") for r in records()]

    spread = run(tail_from("web-a", "web-a", "web-c", "web-d"), events)
    assert spread.new_pods == {"web-c", "web-d"}
    assert spread.phases[Phase.TAIL].ok_by_pod == {"web-a": 100, "web-c": 50, "web-d": 50}
    assert spread.tail_new_pods_pct == 50.0
    pinned = run(tail_from("web-a", "web-x", "web-e"), events)
    assert pinned.tail_new_pods_pct == 0.0
    pinned.write(tmp_path / "p.json")
    (back,) = load_results(tmp_path)
    assert back.new_pods == {"web-c", "web-d"} and back.tail_new_pods_pct == 0.0, "the figure reads the same from JSON"
    assert run(tail_from("web-c"), events).tail_new_pods_pct == 100.0
    assert run(tail_from(""), events).tail_new_pods_pct is None, "no answer names its pod: no share, not a zero"
