"""The records file format: one JSON object per line, read back exactly."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from harness.records import RecordWriter, RequestRecord, read_records, to_json


def test_to_json_is_the_dataclass_as_json_and_reads_back(tmp_path: Path) -> None:
    recs = [
        RequestRecord(0, 0.0, 0.000123, 0.0011, "ok", 200, "web-1", "v2"),
        RequestRecord(7, 1 / 3, 1e-7, 12.5, "reset", 0, "", "", "ServerDisconnected"),
        RequestRecord(9, 2.0, 2.0, 2.0, "http_5xx", 503, 'we"ird\\pod', "vé", "HTTP 503\n"),
    ]
    for r in recs:
        assert json.loads(to_json(r)) == asdict(r)
        assert to_json(r) == json.dumps(asdict(r), separators=(",", ":"))
    w = RecordWriter(tmp_path / "r.jsonl")
    for r in recs:
        w.write(r)
    w.close()
    assert list(read_records(tmp_path / "r.jsonl")) == recs
