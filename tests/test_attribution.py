"""States present at each failure, endpoint-removal lag and termination time, from synthetic watch events."""

from __future__ import annotations

from harness.attribution import attribute
from harness.model import EndpointState, Event, PodState, Source


def test_every_state_present_is_listed_and_lag_is_measured() -> None:
    events = [
        Event(10.0, Source.POD, "old", PodState.READY),
        Event(10.0, Source.ENDPOINT, "old", EndpointState.READY),
        Event(20.0, Source.POD, "new", PodState.RUNNING),
        Event(20.1, Source.ENDPOINT, "new", EndpointState.NOT_READY),  # a new pod's endpoint starts not ready: not a removal
        Event(22.0, Source.POD, "new", PodState.READY),
        Event(22.1, Source.ENDPOINT, "new", EndpointState.READY),
        Event(30.0, Source.POD, "old", PodState.TERMINATING),
        Event(30.2, Source.ENDPOINT, "old", EndpointState.SERVING_TERMINATING),
        Event(36.0, Source.POD, "old", PodState.DELETED),
        Event(36.1, Source.ENDPOINT, "old", EndpointState.REMOVED),
    ]
    failures = [(15.0, ""), (21.0, ""), (31.0, ""), (37.0, ""), (45.0, ""), (33.0, "new")]
    att = attribute(events, failures, {"old": 31.5, "new": 44.0})
    # 31 and 33: a terminating pod and a just-ready pod overlap; both states are listed, once per failure
    assert att.states_at_failure["pod terminating"] == 2
    assert att.states_at_failure["pod ready"] == 6  # "old" or "new" was ready at every failure
    assert att.states_at_failure["pod running"] == 1
    assert att.states_at_failure["endpoint serving-terminating"] == 2
    assert att.states_at_failure["pod deleted <2s"] == 1  # 37.0, one second after "old" was deleted
    assert att.states_at_failure["answered by ready pod"] == 1  # the HTTP failure from "new" at 33
    assert att.endpoint_lag_ms == {"old": 1300.0}  # served 1.3 s after it left the ready endpoints
    assert att.pod_termination_s == {"old": 6.0}
    assert att.max_endpoint_lag_ms == 1300.0


def test_failure_before_any_event_has_no_pods() -> None:
    att = attribute([Event(5.0, Source.POD, "a", PodState.READY)], [(1.0, "")], {})
    assert att.states_at_failure == {"no pods": 1}


def test_no_events_no_attribution() -> None:
    att = attribute([], [], {})
    assert att.states_at_failure == {} and att.endpoint_lag_ms == {} and att.pod_termination_s == {}
