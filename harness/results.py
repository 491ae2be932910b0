"""The run result: one frozen dataclass tree that *is* the JSON schema `rollout-harness/run@2`.

JSON is written and read only through RunResult.to_json / RunResult.from_json; its JSON Schema is
harness/schemas/run.schema.json (tests/test_schemas.py keeps the two in step). Every time inside a result is in
seconds after the load generator's t0 (CLOCK_MONOTONIC); every count is of scheduled requests.

Phases, by each request's *actual* start (a request outside [start, end) belongs to no phase of this run):
  baseline    [start, trigger)    steady load before the trigger; a failure here marks the run `noisy`, unless it
                                  is an HTTP error at a steady rate: the workload's background (harness.background)
  disruption  [trigger, settled)  from the trigger until every old pod is deleted (not just marked) and the
                                  Service's EndpointSlices list exactly the new, ready pods
  tail        [settled, end)      steady load after the disruption (kube-proxy may lag the EndpointSlices)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from harness.attribution import Attribution
from harness.errors import UsageError
from harness.files import write_atomic
from harness.model import WINDOW_PHASES, ConnMode, Event, Phase, PodState, Source, Status, Trigger
from harness.records import RequestRecord
from harness.summary import RunSummary

SCHEMA = "rollout-harness/run@2"


@dataclass(frozen=True)
class PhaseStats:
    start_s: float
    end_s: float
    sent: int
    """Requests that started in [start_s, end_s) and went out (ok + failed + client errors)."""
    ok: int
    failed: int
    """Lost requests: every failure kind except client_error."""
    by_kind: dict[str, int]
    skipped: int
    """Scheduled in this phase but not sent: the in-flight cap was reached."""
    client_errors: int
    ok_by_pod: dict[str, int] = field(default_factory=dict)
    """Answers by the pod that gave them (X-Pod; gRPC: the answer's first line): the load's share per pod. With few
    long-lived connections (keepalive, h2, grpc) a client stays pinned to the pods its connections reached, and the
    tail's shares show whether it moved to the new pods."""

    @property
    def fail_pct(self) -> float:
        return 100.0 * self.failed / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class Window:
    trigger_s: float
    """The harness sent the trigger's first API call."""
    complete_s: float
    """The Deployment controller called the rollout complete (as `kubectl rollout status`)."""
    old_pods_gone_s: float
    """No pod of the workload was terminating any more: every old pod deleted."""
    settled_s: float
    """Old pods gone and the EndpointSlices list exactly the ready pods: the end of the disruption phase."""
    end_s: float
    """settled_s + tail (with discovery dns or registry, + the seconds the client may still call a gone pod): the
    harness asked the generator to stop, or, in a series, the next rollout's trigger came."""
    start_s: float = 0.0
    """Where this run's baseline starts: 0 (the load's start), or, for a later rollout of a series (several rollouts
    on one set-up, Schedule.series), the previous rollout's settled_s: its tail is this rollout's baseline."""

    @property
    def own_s(self) -> float:
        """Seconds of load this run alone accounts for: from the load's start, or in a series from its trigger (its
        baseline is the tail of the rollout before, counted there), to its end. Their sum is the time measured."""
        return self.end_s - (self.trigger_s if self.start_s > 0 else 0.0)


@dataclass(frozen=True)
class Blindness:
    max_gap_ms: float
    """Longest time inside [trigger, end) with no request starting (a stalled generator sees nothing)."""
    blind_ms: float
    """Sum, over gaps longer than 2 request intervals inside [trigger, end), of gap minus one interval."""
    lateness_p99_ms: float
    """p99 of start lateness (actual - scheduled start) of requests inside [trigger, end)."""


@dataclass(frozen=True)
class GeneratorStats:
    sent: int
    records: int
    cpu_seconds: float
    cpu_ms_per_1k: float
    """Generator CPU per 1,000 scheduled requests, in ms."""
    wall_seconds: float
    scheduling: str
    """rr (real-time round robin), nice (-10) or default."""
    max_in_flight: int


@dataclass(frozen=True)
class Provenance:
    options: dict[str, Any]
    """Every option that changes a number: rate, mode, baseline, tail, timeouts, thresholds, trials."""
    versions: dict[str, str]
    """harness, python, kubernetes (the API server's git version)."""
    cluster: dict[str, str]
    """Cluster settings that change a number (name, kube-proxy mode, dead-pod-IP behaviour, ...)."""
    content: dict[str, str] = field(default_factory=dict)
    """Content hashes of what ran (harness.fingerprint): `source` (the harness and probe app code), `commit` (git,
    "+dirty" if changed; "" outside git), `variant` (the objects the cell deployed), `image <tag>` (probe images)."""

    def key(self) -> str:
        """Runs with different keys are never folded into one row: options, cluster settings, harness version, and
        the content hashes (a commit alone does not split: the same source under two commits is the same code)."""
        options = {k: v for k, v in self.options.items() if k not in ("trials", "certify")}  # the plan, not a run's numbers
        content = {k: v for k, v in self.content.items() if k != "commit"}
        doc = {"options": options, "cluster": self.cluster, "harness": self.versions.get("harness", "")}
        return hashlib.sha256(json.dumps(doc | ({"content": content} if content else {}), sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunResult:
    name: str
    variant: str
    trigger: Trigger
    mode: ConnMode
    trial: int
    status: Status
    reasons: tuple[str, ...]
    """Why the run is not `used` (empty when it is)."""
    provenance: Provenance
    error: str = ""
    window: Window | None = None
    phases: dict[Phase, PhaseStats] = field(default_factory=dict)
    blindness: Blindness | None = None
    summary: RunSummary | None = None
    """The whole run (all phases): latency, lateness, per-second timeline."""
    generator: GeneratorStats | None = None
    attribution: Attribution | None = None
    events: tuple[Event, ...] = ()
    failure_samples: tuple[RequestRecord, ...] = ()
    """Up to 200 failed requests, earliest first."""
    setup_s: float = 0.0
    """Deploy, wait ready and serving, before the load started (outside the measured window)."""
    setup_ahead_s: float = 0.0
    """Of setup_s, the seconds spent while the cell before this one was still measured (RunOptions.ahead)."""
    conntrack_flushed: int = 0
    """Conntrack entries toward this cell's NodePort deleted on the nodes just before the load started: leftovers
    of earlier cells (e.g. SYN_SENT entries toward their dead pods) that would capture reused source ports."""
    overlap: str = ""
    """What else ran while this run was set up or measured: the cell during whose tail it was set up (ahead), or the
    series whose set-up it shared ("" if none; with parallel > 1, see provenance options)."""
    stopped: str = ""
    """Set on the last trial a cell ran when `stop_early` ended it before its maximum: why no trial followed."""

    @property
    def lost(self) -> int:
        """Requests lost to the disruption: failures in the disruption and tail phases."""
        return sum(self.phases[p].failed for p in WINDOW_PHASES if p in self.phases)

    @property
    def lost_by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in WINDOW_PHASES:
            for k, n in self.phases[p].by_kind.items() if p in self.phases else ():
                out[k] = out.get(k, 0) + n
        return out

    @property
    def window_sent(self) -> int:
        return sum(self.phases[p].sent for p in WINDOW_PHASES if p in self.phases)

    @property
    def fail_pct(self) -> float:
        """Failures in the disruption and tail phases over requests sent in them, in %."""
        return 100.0 * self.lost / self.window_sent if self.window_sent else 0.0

    @property
    def new_pods(self) -> frozenset[str]:
        """Pods this rollout created: seen pending or scheduled (made, not yet running) at or after the trigger. A pod
        there before the trigger never is again, and in a series the pods of earlier rollouts were made before this
        run's window."""
        if self.window is None:
            return frozenset()
        made = (PodState.PENDING, PodState.SCHEDULED)
        return frozenset(e.name for e in self.events if e.source is Source.POD and e.state in made and e.t >= self.window.trigger_s)

    @property
    def tail_new_pods_pct(self) -> float | None:
        """Of the tail's answers (PhaseStats.ok_by_pod), the % that new_pods gave. 100 when the load moved wholly to
        the pods the rollout created (set-image); about 75 after scale (4 -> 1 -> 4: 3 of the 4 pods are new) with a
        connection per request; 0 when the client stayed pinned to pods that were there before the trigger (a few
        long-lived connections after scale all sit on the one pod that survived). None without a tail answer that
        names its pod (a workload that sends no X-Pod)."""
        named = self.phases[Phase.TAIL].ok_by_pod if Phase.TAIL in self.phases else {}
        if not sum(named.values()):
            return None
        new = self.new_pods
        return 100.0 * sum(n for pod, n in named.items() if pod in new) / sum(named.values())

    def write(self, path: Path) -> None:
        """The result as JSON in `path`, atomically (harness.files): a reader never sees half a result."""
        write_atomic(path, json.dumps(self.to_json(), indent=1) + "\n")

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunResult:
        if doc.get("schema") != SCHEMA:
            raise UsageError(f"not a {SCHEMA} result (schema {doc.get('schema')!r})")
        return typing.cast(RunResult, _build(cls, {k: v for k, v in doc.items() if k != "schema"}))


def load_results(path: Path) -> list[RunResult]:
    """The run@2 result in a file, or every one under a directory (recursively), in run order. Other JSON files
    under a directory are ignored; a file given by name must be one."""
    return [r for _, r in load_result_files(path)]


def load_result_files(path: Path) -> list[tuple[Path, RunResult]]:
    """load_results with the file each result came from."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(path.rglob("*.json"), key=lambda q: (q.stat().st_mtime, q.name))
    else:
        raise UsageError(f"no such results file or directory: {path}")
    out = []
    for p in files:
        try:
            doc = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise UsageError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from e
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            try:
                out.append((p, RunResult.from_json(doc)))
            except (TypeError, ValueError, KeyError, AttributeError) as e:
                raise UsageError(f"{p}: not a valid {SCHEMA} result ({e})") from e
    if not out:
        raise UsageError(f"no {SCHEMA} results in {path}")
    return out


def _build(tp: Any, value: Any) -> Any:
    """Rebuild a value of type `tp` from its JSON form (dataclasses, enums, dict/tuple/list, Optional)."""
    origin = typing.get_origin(tp)
    if tp is Any or value is None:
        return value
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], value)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        return typing.cast(Any, tp)(**{k: _build(hints[k], v) for k, v in value.items() if k in names})
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if origin is dict:
        kt, vt = typing.get_args(tp)
        return {_build(kt, k): _build(vt, v) for k, v in value.items()}
    if origin in (tuple, list):
        (et, *_) = typing.get_args(tp)
        return origin(_build(et, v) for v in value)
    return value
