"""RunOptions: every knob of a measured run, grouped by concern, each field documented under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.model.domain import CellSpec, Client, ConnMode, Discovery, Trigger, Via, WorkloadKind
from harness.stats import zero_events_needed


@dataclass(frozen=True)
class Traffic:
    """The load: how much, over which connections, from where, to which path."""

    rate: float = 200.0
    """Requests per second (open loop). 200/s resolves outages of 5 ms per request and leaves the 2 cores to the cluster."""
    connect_timeout: float = 3.0
    """Linux retransmits a lost SYN after 1 s, so a client that gives up sooner counts one lost packet on a loaded
    2-core machine as a failure. Most HTTP clients' connect timeouts are longer still."""
    read_timeout: float = 5.0
    """Seconds from connect to the whole response; a hung backend shows as read_timeout."""
    connections: int = 16
    """Keep-alive mode: requests go to this many connection pools in turn, so this many connections stay open, each
    to a pod kube-proxy picked when it was opened. With 16 and 3 pods, a given pod holds none with probability
    (2/3)^16 = 0.15 %, so a drain always meets connections. Unused in `new` mode."""
    path: str = "/"
    """The HTTP path every request asks for (mode grpc: unused, its method is /probe.Probe/Get)."""
    client: Client = Client.HOST
    discovery: Discovery = Discovery.SERVICE
    dns_cache: float = 0.0
    """Discovery dns: the client keeps each answer this many seconds instead of its TTL (0: the TTL)."""
    client_image: str | None = None
    """Client pod on a cluster that pulls images: the client image pushed where it can pull it from (build it with
    `rollout-harness client-image`); default: build it here and load it into kind."""
    mux_connections: int = 2
    """Modes h2 and grpc: the connections (gRPC: channels) the streams go to in turn. A client of a multiplexed
    protocol keeps few, often one per target, each to the pod kube-proxy picked when it was opened: with 2 and 3 pods
    a given pod holds none with probability (2/3)^2 = 44 %. That pinning is what these modes measure; raise it to
    spread the load as keep-alive's 16 connections do."""
    registry_fetch: float = 5.0
    """Discovery registry: the client keeps the instances listed this many seconds before it fetches them again.
    Eureka's client fetches every 30 s, and its leases expire 90 s after a heartbeat every 30 s; the bundled
    registry variants divide those by six (heartbeat 5 s, expiry 15 s), and so does this default."""
    via: Via = Via.SERVICE
    """The host client's way in: the workload's Service, or the ingress controller (retry off or on)."""

    def validate(self) -> None:
        """UsageError naming the first setting out of its range."""
        within("rate", self.rate, 0, 100_000, "requests/s", low_open=True)
        within("connect timeout", self.connect_timeout, 0, 3600, "s", low_open=True)
        within("read timeout", self.read_timeout, 0, 3600, "s", low_open=True)
        within("connections", self.connections, 1, 1000)
        within("multiplexed connections", self.mux_connections, 1, 1000)
        within("DNS cache time", self.dns_cache, 0, 3600, "s")
        within("registry fetch interval", self.registry_fetch, 0, 3600, "s", low_open=True)
        if not self.path.startswith("/"):
            raise UsageError(f"path {self.path!r}: must start with /")


@dataclass(frozen=True)
class Timing:
    """The measured window around the trigger."""

    baseline: float = 3.0
    """Seconds of steady load before the trigger; a failure in it marks the run noisy, but for HTTP errors at a steady
    rate: those are the workload's background, and the cell's baselines together estimate its rate (harness.background).
    To see a background of rate b they need about 3 / b requests in all: at 200/s over 3 trials, 3 s sees 0.17 %,
    10 s sees 0.05 %; a background too rare for them to see reads as rollout loss."""
    tail: float = 3.0
    """Seconds of load after the disruption settled: kube-proxy can lag the EndpointSlices by ~2 s."""
    rollout_timeout: float = 180.0
    """A rollout (or a settle, or an eviction round) that takes longer fails the run."""


@dataclass(frozen=True)
class Thresholds:
    """When a run is not trusted (status unreliable)."""

    max_lateness: float = 0.5
    """Seconds. A run whose start-lateness p99 inside the window exceeds this is unreliable: well under the 3 s
    connect timeout, so a stalled generator cannot fake connect timeouts."""
    max_gap: float = 0.2
    """Seconds. A run with zero loss but a longer gap with no request start inside the window is unreliable
    (a blind zero): an outage shorter than the gap could have been missed. A zero therefore means "no outage
    of max_gap or longer was missed"; outages here last 0.3 s and more (kube-proxy's programming lag, pods
    exiting or starting), so 200 ms keeps them visible."""


@dataclass(frozen=True)
class Schedule:
    """How many cells run, in which order, how many at once."""

    trials: int = 1
    """Runs per cell; `compare` defaults to 3 so a verdict rests on more than one run."""
    stop_early: bool = False
    """Adaptive trials: a cell runs no more trials once its verdict cannot change (see matrix.settled_lossy)."""
    certify: float | None = None
    """A certification run: show, with 95 % confidence, that the probability that a rollout loses anything is at most
    this (0.10: 10 %). Each cell rolls until `certify_rollouts` of its rollouts lost nothing (the claim reached) or
    until its first rollout that loses (lossy at once); `trials` is then the most rollouts a cell may take, excluded
    ones included, before it is called inconclusive."""

    @property
    def certify_rollouts(self) -> int:
        """Rollouts that must all lose nothing for the certification claim: the least n with 1 - 0.05^(1/n) <= certify
        (exact binomial, one-sided 95 %): 29 for 10 %, 59 for 5 %. 0 without certification."""
        return zero_events_needed(self.certify) if self.certify is not None else 0

    parallel: int = 1
    """Cells run at once, each in its own namespace (drains still take turns: see actions.exclusive)."""
    series: bool = False
    """Roll a cell's later trials on one set-up instead of a fresh one each: trials t..2t-1 (1, 2-3, 4-7, 8-15, ...)
    share a namespace, pods and load, each rollout's tail being the next one's baseline and set-image going back and
    forth (v1 -> v2 -> v1). Only for repeatable triggers (not drain, node-down). Certification turns it on."""
    ahead: bool = True
    """With parallel 1: set the next cell up (namespace, pods, the Service answering) during this cell's tail, once
    its old pods are gone, instead of after its window: about 3 s less per cell (see docs/findings.md, Time to verdict)."""


@dataclass(frozen=True)
class Subject:
    """What is rolled: a bundled variant, or the user's workload with overlays, as a Deployment, StatefulSet or
    DaemonSet."""

    kind: WorkloadKind = WorkloadKind.DEPLOYMENT
    manifests: Path | None = None
    """Variants directory (default: the bundled one)."""
    workload: Path | None = None
    """Your own workload (YAML: one Deployment, its Service, extra objects) instead of a bundled variant; the cells'
    variant is then its name (the file's stem) followed by `+overlay` for each overlay applied to it."""
    new_image: str | None = None
    """With workload: the image set-image moves to; None: a pod-template change with the same image."""
    port: int | None = None
    """With workload: the Service port the load goes to (default: its first)."""


@dataclass(frozen=True)
class Output:
    """What is written besides the returned results."""

    out: Path | None = None
    """Directory for one JSON per run (and records with keep_records)."""
    keep_records: bool = False
    pictures: bool = True
    """With out: a PNG per run next to its JSON (needs the `plot` extra, matplotlib; skipped without it)."""


@dataclass(frozen=True)
class Consent:
    """What a run may do to a cluster the harness did not create (one that does not carry the marker `up` writes into
    its own: harness.marker). There it touches only the namespaces it creates, unless allowed more here."""

    allow_disruption: bool = False
    """Run drain there: it cordons the schedulable worker with most of the cell's pods (never a control-plane node,
    never one already cordoned) and evicts them, so other workloads' new pods go elsewhere while it lasts. The cordon
    is recorded on the node and lifted afterwards (by the next harness command if the run is killed), and nothing
    else. node-down needs the harness's own cluster whatever this says."""


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a measured run, grouped by concern; each group documents its fields and their defaults."""

    traffic: Traffic = field(default_factory=Traffic)
    timing: Timing = field(default_factory=Timing)
    thresholds: Thresholds = field(default_factory=Thresholds)
    schedule: Schedule = field(default_factory=Schedule)
    subject: Subject = field(default_factory=Subject)
    output: Output = field(default_factory=Output)
    consent: Consent = field(default_factory=Consent)

    @classmethod
    def of(cls, **settings: object) -> RunOptions:
        """RunOptions from settings named by their field alone, whatever their group: `of(rate=150, tail=5,
        client="pod")` (enum values may be given as their strings). For tests and the pytest plugin."""
        groups: dict[str, dict[str, object]] = {}
        for name, value in settings.items():
            group = _GROUP_OF.get(name)
            if group is None:
                raise UsageError(f"unknown run setting {name!r}; known: {', '.join(sorted(_GROUP_OF))}")
            default = getattr(_DEFAULTS[group], name)
            groups.setdefault(group, {})[name] = type(default)(str(value)) if isinstance(default, StrEnum) else value
        return cls(**{g: type(_DEFAULTS[g])(**kw) for g, kw in groups.items()})

    def validate(self, cells: Sequence[CellSpec] = ()) -> RunOptions:
        """Self, if the settings (and the cells to run with them) go together; else UsageError naming the first
        setting that does not."""
        t, s, w = self.traffic, self.subject, self.timing
        t.validate()
        within("trials", self.schedule.trials, 1, 10_000)
        if self.schedule.certify is not None:
            within("certification target", 100 * self.schedule.certify, 0.1, 90, "%")
            if self.schedule.trials < self.schedule.certify_rollouts:
                raise UsageError(
                    f"certifying {100 * self.schedule.certify:g} % takes {self.schedule.certify_rollouts} rollouts that lose "
                    f"nothing; the most trials per cell ({self.schedule.trials}) must be at least that"
                )
        within("parallel cells", self.schedule.parallel, 1, 64)
        within("maximum lateness", self.thresholds.max_lateness, 0, 60, "s", low_open=True)
        within("maximum gap", self.thresholds.max_gap, 0, 60, "s", low_open=True)
        within("baseline", w.baseline, 0, 3600, "s")
        within("tail", w.tail, 0, 3600, "s")
        if w.rollout_timeout < 1:
            raise UsageError(f"rollout timeout {w.rollout_timeout:g}s is too short to roll anything out; give at least 1s")
        within("rollout timeout", w.rollout_timeout, 1, 86400, "s")
        if s.port is not None:
            within("Service port", s.port, 1, 65535)
        if t.discovery is not Discovery.SERVICE and t.client is not Client.POD:
            why = "the cluster's DNS and its pod IPs are reachable only from inside it"
            raise UsageError(f"discovery {t.discovery.value} needs the client in a pod: {why}")
        if t.dns_cache and t.discovery is not Discovery.DNS:
            raise UsageError("a DNS cache time goes with discovery dns")
        for mode in sorted({c.mode for c in cells}):
            check_mode(mode, t.discovery, t.client)
        if t.via is not Via.SERVICE:
            check_via(t, {c.mode for c in cells})
        if s.workload is None and (s.new_image is not None or s.port is not None):
            raise UsageError("a new image and a Service port go with your own workload")
        for c in cells:
            if why := s.kind.refuses(c.trigger):
                raise UsageError(f"{s.kind.value} × {c.trigger.value}: {why}")
        if self.schedule.parallel > 1 and any(c.trigger is Trigger.NODE_DOWN for c in cells):
            raise UsageError("node-down freezes a worker under every other cell's pods: run node-down cells one at a time")
        return self

    def provenance(self, mode: ConnMode) -> dict[str, float | int | str]:
        """The options that change a run's numbers, recorded in every result (results.Provenance.options). The
        flat names are those of the first results, so results written then still fold with new ones."""
        t, w, th, s = self.traffic, self.timing, self.thresholds, self.subject
        always: dict[str, float | int | str] = {
            "rate": t.rate,
            "baseline": w.baseline,
            "tail": w.tail,
            "rollout_timeout": w.rollout_timeout,
            "connect_timeout": t.connect_timeout,
            "read_timeout": t.read_timeout,
            "connections": t.connections,
            "max_lateness": th.max_lateness,
            "max_gap": th.max_gap,
            "trials": self.schedule.trials,
            "path": t.path,
            "client": t.client.value,
        }
        # recorded only when set away from their defaults, so older results still fold with new ones
        d_t, d_s, d_sch = Traffic(), Subject(), Schedule()
        when_set: dict[str, tuple[object, object]] = {
            "workload": (s.workload, d_s.workload),
            "new_image": (s.new_image, d_s.new_image),
            "port": (s.port, d_s.port),
            "client_image": (t.client_image, d_t.client_image),
            "parallel": (self.schedule.parallel, d_sch.parallel),
            "ahead": (self.schedule.ahead, d_sch.ahead),
            "series": (self.schedule.series, d_sch.series),
            "certify": (self.schedule.certify, d_sch.certify),
            "kind": (s.kind, d_s.kind),
            "discovery": (t.discovery, d_t.discovery),
            "dns_cache": (t.dns_cache, d_t.dns_cache),
            "registry_fetch": (t.registry_fetch, d_t.registry_fetch),
            "via": (t.via, d_t.via),
        }
        if mode.multiplexed:
            when_set["mux_connections"] = (t.mux_connections, None)  # always recorded for the modes it applies to
        extra = {k: _plain(v) for k, (v, default) in when_set.items() if v != default}
        return always | extra | {"mode": mode.value}


def grouped(provenance: Mapping[str, object]) -> dict[str, dict[str, object]]:
    """Recorded options (provenance()'s flat names, a saved result's too) by the RunOptions group each belongs to:
    {"traffic": {"rate": 200.0, "mode": "new", ...}, "timing": {...}, ...}, groups and names in the order given. The
    connection mode goes with the traffic; a name no group knows (a newer result's) under "other"."""
    out: dict[str, dict[str, object]] = {}
    for name, value in provenance.items():
        out.setdefault("traffic" if name == "mode" else _GROUP_OF.get(name, "other"), {})[name] = value
    return out


def check_mode(mode: ConnMode, discovery: Discovery, client: Client = Client.HOST) -> None:
    """UsageError when requests cannot go in this connection mode with this discovery or from this client."""
    if mode.multiplexed and client is Client.POD:
        raise UsageError(f"mode {mode.value} runs from the host only: the client pod's image has no HTTP/2 or gRPC library yet")
    if mode is ConnMode.GRPC and discovery is Discovery.DNS:
        raise UsageError("mode grpc resolves the name itself (gRPC's resolver): discovery dns goes with new, keepalive and h2")


def check_via(t: Traffic, modes: set[ConnMode]) -> None:
    """UsageError when the requests cannot go through the ingress controller so (t.via is not Via.SERVICE)."""
    if t.client is not Client.HOST or t.discovery is not Discovery.SERVICE:
        why = "the client on the host sends to the controller's NodePort; leave client and discovery at their defaults"
        raise UsageError(f"via {t.via.value}: {why}")
    if multiplexed := sorted(m.value for m in modes if m.multiplexed):
        raise UsageError(f"via {t.via.value}: mode {multiplexed[0]} is not routed through the ingress yet; use new or keepalive")


def within(name: str, value: float, lo: float, hi: float, unit: str = "", low_open: bool = False) -> None:
    """UsageError `<name> <value>: must be in [lo, hi] <unit>` unless it is (lo excluded if low_open)."""
    if (lo < value if low_open else lo <= value) and value <= hi:
        return
    given = f"{value:g}{'s' if unit == 's' else ''}"
    bounds = f"{'(' if low_open else '['}{lo:g}, {hi:g}]" + (f" {unit}" if unit else "")
    raise UsageError(f"{name} {given}: must be in {bounds}")


def _plain(v: object) -> float | int | str:
    if isinstance(v, StrEnum):
        return v.value
    if isinstance(v, Path):
        return str(v)
    assert isinstance(v, float | int | str)
    return v


_DEFAULTS: dict[str, Any] = {f.name: f.default_factory() for f in fields(RunOptions)}  # type: ignore[operator]
_GROUP_OF = {f.name: group for group, d in _DEFAULTS.items() for f in fields(d)}


def certify_trials(p: float) -> int:
    """The most trials a certification of p may take by default: the rollouts its claim needs + 20 % (at least 2
    more) for excluded ones, e.g. 35 for 10 %."""
    need = zero_events_needed(p)
    return need + max(2, -(-need // 5))
