"""Attribution of failures to pod states and endpoint-removal lag, from synthetic watch events."""

from __future__ import annotations

from harness.watch import Event, attribute


def test_failures_get_the_state_of_the_moment_and_lag_is_measured() -> None:
    events = [
        Event(10.0, "pod", "old", "ready"),
        Event(10.0, "endpoint", "old", "ready"),
        Event(20.0, "pod", "new", "running"),
        Event(20.1, "endpoint", "new", "not-ready"),  # a new pod's endpoint starts not ready: not a removal
        Event(22.0, "pod", "new", "ready"),
        Event(30.0, "pod", "old", "terminating"),
        Event(30.2, "endpoint", "old", "serving-terminating"),
        Event(36.0, "pod", "old", "deleted"),
    ]
    failures = [(15.0, ""), (21.0, ""), (23.0, ""), (31.0, ""), (37.0, ""), (45.0, ""), (33.0, "new")]
    att = attribute(events, failures, {"old": 31.5, "new": 44.0})
    assert att.failures_by_state == {"all-ready": 2, "starting": 1, "new-pod-just-ready": 1, "terminating": 2, "ready": 1}
    assert att.endpoint_lag_ms == {"old": 1300.0}  # served 1.3 s after it left the ready endpoints
    assert att.pod_termination_s == {"old": 6.0}


def test_no_events_no_attribution() -> None:
    att = attribute([], [], {})
    assert att.failures_by_state == {} and att.endpoint_lag_ms == {} and att.pod_termination_s == {}
