"""The JSON Schemas shipped in harness/schemas: valid draft 2020-12, in step with the dataclasses they describe, and
met by the documents the CLI writes (run results and records saved by the matrix, the cells JSON of `report`, a
`load`'s JSON and records against a real loopback server)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterable
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Any, cast

import pytest
from jsonschema import Draft202012Validator
from support import RawServer, respond
from test_analysis import records, run
from test_matrix import FakeRunner, cells
from test_plot import EVENTS as PLOT_EVENTS

from harness import measure, schemas
from harness.attribution import Attribution
from harness.background import Background
from harness.cell import base_result
from harness.classify import FAILURE_KINDS, FailureKind
from harness.cli import load as load_verb
from harness.cli import main
from harness.errors import UsageError
from harness.gate import Budget
from harness.matrix import run_matrix
from harness.model import (
    CellSpec,
    Client,
    ConnMode,
    Discovery,
    EndpointState,
    Event,
    Output,
    PodState,
    RunOptions,
    Schedule,
    Source,
    Status,
    Trigger,
    WorkloadKind,
)
from harness.model.options import grouped
from harness.records import RequestRecord
from harness.report import CELLS_SCHEMA
from harness.results import SCHEMA, Blindness, GeneratorStats, PhaseStats, Provenance, RunResult, Window
from harness.summary import RunSummary
from harness.target import Target
from harness.verdict import CellVerdict

NAIVE = {400 + i: "refused" for i in range(30)} | {450: "http_5xx"}
EVENTS = sorted(
    [*PLOT_EVENTS, Event(3.0, Source.HARNESS, "trigger", "set image v2"), Event(5.6, Source.ENDPOINT, "web-a", EndpointState.REMOVED)],
    key=lambda e: e.t,
)
CLUSTER = {
    "cluster": "rollout-harness",
    "proxy_mode": "iptables",
    "dead_pod_ip": "reject",
    "icmp_ratelimit": "off",
    "userland_proxy": "off",
}
VERSIONS = {"harness": "0.1.0", "python": "3.11.7", "kubernetes": "v1.34.4"}
EVERY_OPTION = RunOptions.of(
    rate=150.0,
    client="pod",
    client_image="registry.example/client:1",
    discovery="dns",
    dns_cache=2.0,
    registry_fetch=10.0,
    parallel=2,
    ahead=False,
    series=True,
    certify=0.1,
    trials=35,
    kind="statefulset",
    workload=Path("tests/examples/shop-api.yaml"),
    new_image="shop:2",
    port=8000,
)
DEFAULTS = RunOptions()
SOME_OPTIONS = RunOptions.of(rate=150.0, client="pod", discovery="dns", dns_cache=2.0, parallel=2, ahead=False, certify=0.1, trials=35)


class Recording(FakeRunner):
    """FakeRunner's trials as a CellRunner makes them: the provenance from cell.base_result (the real options,
    content hashes and a target's versions and settings), pod and endpoint events, a failed rollout with nothing
    measured, and the records kept beside each result (measure.keepsakes)."""

    def __init__(self, outcome: dict[str, dict[int, str]], out: Path, opts: RunOptions = DEFAULTS, keep_records: bool = True) -> None:
        super().__init__(outcome, setup=0.0, tail=0.0)
        self.opts, self.out = opts, out
        self.output = Output(out, keep_records=keep_records, pictures=False)
        images = {"image rollout-harness/probe-app:v1": "58e49f26e993"}
        self.target = Target(cast(Any, None), cast(Any, None), VERSIONS, CLUSTER, images=images)

    def result(self, cell: CellSpec) -> RunResult:
        measured = run(records(self.outcome[cell.variant]), EVENTS)
        provenance = base_result(cell, self.opts, self.target).provenance
        return replace(measured, name=cell.name, variant=cell.variant, trial=cell.trial, provenance=provenance)

    def failed(self, cell: CellSpec, error: str) -> RunResult:
        return base_result(cell, self.opts, self.target, Status.FAILED, error)

    def keep(self, result: RunResult) -> None:
        if result.status is not Status.FAILED:  # a failed rollout measured nothing: CellRunner keeps nothing of it
            measure.keepsakes(result, records(self.outcome[result.variant]), self.output, records_too=True)


def saved_results(out: Path, opts: RunOptions = DEFAULTS, keep_records: bool = True) -> list[RunResult]:
    """naive (30 refused, 1 HTTP 5xx) and best-practice (none), 2 trials each, both second rollouts failed: saved in
    `out` as `compare --out` saves them (from a test that is not a coroutine: main() runs its own loop)."""
    runner = Recording({"naive": NAIVE, "best-practice": {}}, out, opts, keep_records)
    runner.stuck_trials = {2}
    matrix = cells(("naive", "best-practice"), 2)
    results = asyncio.run(run_matrix(runner, matrix, Schedule(trials=2, ahead=False), out))
    assert [r.status for r in results] == [Status.USED, Status.USED, Status.FAILED, Status.FAILED]
    return results


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schemas.schema(name))


def check(name: str, doc: object) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(doc)]
    assert not errors, errors


def test_every_schema_is_valid_and_names_its_documents() -> None:
    assert {SCHEMA, CELLS_SCHEMA, load_verb.LOAD_SCHEMA, "rollout-harness/record@1"} == set(schemas.FILES)
    for name in schemas.FILES:
        s = schemas.schema(name)
        Draft202012Validator.check_schema(s)
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert s["$id"] == f"urn:rollout-harness:schema:{name.split('/')[1]}" and s["title"].startswith(f"{name}: ")
        assert "record@" in name or s["properties"]["schema"] == {"const": name}
    with pytest.raises(UsageError, match="no schema 'rollout-harness/run@1'; known: rollout-harness/run@2"):
        schemas.schema("rollout-harness/run@1")


def _object(defn: dict[str, Any], cls: type, before: tuple[str, ...] = (), after: tuple[str, ...] = (), every: bool = False) -> None:
    """The schema of a dataclass as it is written: every field (between `before` and `after`), nothing else; required
    if `every`, else unless it has a default (results written before it was added lack it)."""
    fields = dataclasses.fields(cls)
    assert defn["additionalProperties"] is False, cls
    assert list(defn["properties"]) == [*before, *(f.name for f in fields), *after], cls
    defaults = {f.name for f in fields if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    assert set(defn["required"]) == set(defn["properties"]) - (set() if every else defaults), cls


def _enum(defn: dict[str, Any], values: Iterable[StrEnum], *more: str) -> None:
    """The schema's enum is these values, in their order."""
    assert defn["enum"] == [*(m.value for m in values), *more], defn


def test_the_schemas_follow_the_dataclasses_and_enums() -> None:
    """A field added to a result without its schema (or the reverse) fails here, not in a consumer."""
    run_s, cells_s = schemas.schema(SCHEMA), schemas.schema(CELLS_SCHEMA)
    load_s, record_s = schemas.schema(load_verb.LOAD_SCHEMA), schemas.schema("rollout-harness/record@1")
    d = run_s["$defs"]
    _object(run_s, RunResult, before=("schema",))
    plain: dict[str, type] = {"provenance": Provenance, "window": Window, "phase": PhaseStats, "blindness": Blindness}
    plain |= {"generator": GeneratorStats, "attribution": Attribution, "event": Event, "summary": RunSummary}
    for name, cls in plain.items():
        _object(d[name], cls)
    _object(d["record"], RequestRecord, every=True)  # records.to_json writes every field
    _object(cells_s["$defs"]["cell"], CellVerdict, after=("over_budget",), every=True)
    _object(cells_s["$defs"]["cell"]["properties"]["background"], Background)
    assert list(cells_s["properties"]["budget"]["properties"]) == [f.name for f in dataclasses.fields(Budget)]
    for defs in (d, cells_s["$defs"]):
        _enum(defs["trigger"], Trigger)
        _enum(defs["mode"], ConnMode)
        _enum(defs["kind_counts"]["propertyNames"], FAILURE_KINDS)
    _enum(run_s["properties"]["status"], Status)
    _enum(d["event"]["allOf"][0]["then"]["properties"]["state"], PodState)
    _enum(d["event"]["allOf"][1]["then"]["properties"]["state"], EndpointState)
    _enum(d["record"]["properties"]["kind"], FailureKind, "skipped", "unfinished")
    for name, values in (("client", Client), ("discovery", Discovery), ("kind", WorkloadKind)):
        _enum(d["options"]["properties"][name], values)
    # the options a result records, each with one definition, grouped in the cells' settings as model.grouped does
    recorded = EVERY_OPTION.provenance(ConnMode.KEEPALIVE)
    assert list(d["options"]["properties"]) == list(recorded)
    groups = cells_s["$defs"]["options"]["properties"]
    for group, names in grouped(recorded).items():
        assert groups[group]["properties"] == {n: d["options"]["properties"][n] for n in names}, group
    assert sum(len(g.get("properties", {})) for g in groups.values()) == len(recorded)
    # what two schemas share is written the same in both
    assert {k: v for k, v in record_s.items() if not k.startswith("$") and k not in ("title", "description")} == {
        k: v for k, v in d["record"].items() if k != "description"
    }
    assert load_s["$defs"]["summary"]["properties"] == d["summary"]["properties"]
    assert set(load_s["$defs"]["summary"]["required"]) == set(d["summary"]["properties"])  # a load writes all, always
    for part in ("cluster", "versions", "content"):
        assert cells_s["$defs"]["settings"]["properties"][part] == d["provenance"]["properties"][part]


def test_saved_results_and_their_records_meet_their_schemas(tmp_path: Path) -> None:
    """Every file the matrix saved: each result (used and failed alike) has every property its schema lists, and
    each line of the records kept beside it is a record."""
    results = saved_results(tmp_path)
    props = set(schemas.schema(SCHEMA)["properties"])
    for r in results:
        doc = json.loads((tmp_path / f"{r.name}.json").read_text())
        check(SCHEMA, doc)
        assert set(doc) == props
    lines = [json.loads(ln) for p in sorted(tmp_path.glob("*.records.jsonl")) for ln in p.read_text().splitlines()]
    assert len(lines) == 2 * 900
    rec = validator("rollout-harness/record@1")
    assert [e.message for doc in lines for e in rec.iter_errors(doc)] == []
    wrong = {**lines[0], "kind": "timeout"}
    assert [e.message for e in rec.iter_errors(wrong)] != [], "a kind not in the taxonomy is refused"


def test_the_cells_json_meets_its_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved_results(tmp_path / "a")
    saved_results(tmp_path / "b", SOME_OPTIONS)
    assert main(["report", str(tmp_path), "--format", "json", "--max-failures", "0"]) == 1
    doc = json.loads(capsys.readouterr().out)
    check(CELLS_SCHEMA, doc)
    assert [c["key"] for c in doc["cells"]] == [s["key"] for s in doc["settings"]]  # a key per variant and options
    bad = {**doc, "settings": "cluster: rollout-harness"}  # cells@2's prose no longer passes
    assert list(validator(CELLS_SCHEMA).iter_errors(bad))


@pytest.mark.integration
def test_a_loads_json_and_records_meet_their_schemas(raw_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Against a real loopback server answering 503: the JSON printed (--format json) is the one written (--out), and
    both meet load@1; each record line meets record@1."""
    server: RawServer = raw_server(respond(503, "Service Unavailable"))
    out, recs = tmp_path / "load.json", tmp_path / "records.jsonl"
    argv = ["-q", "load", server.url, "--rate", "50", "--duration", "200ms", "--format", "json", "--out", str(out), "--records", str(recs)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    check(load_verb.LOAD_SCHEMA, printed)
    assert printed["summary"]["by_kind"] == {"http_5xx": 10} and printed["summary"]["http_codes"] == {"503": 10}
    for line in recs.read_text().splitlines():
        check("rollout-harness/record@1", json.loads(line))
