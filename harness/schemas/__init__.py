"""JSON Schemas (draft 2020-12) of the documents the tool writes, shipped as package data:

    run.schema.json      rollout-harness/run@2      one trial: run and compare with --out DIR write DIR/<name>.json
    cells.schema.json    rollout-harness/cells@3    the cells' verdicts: run, compare and report with --format json
    load.schema.json     rollout-harness/load@1     a plain load: load --out FILE, load --format json
    record.schema.json   rollout-harness/record@1   one line of a records file (JSONL): load --records, --keep-records

Every document but a record line names its schema in its `schema` field: `schema(doc["schema"])` is the one to check
it against (tests/test_schemas.py checks documents the CLI wrote). Files the tool keeps for itself (the host changes
`up` recorded, the marker, a deploy's state) have none: they are not an interface.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from harness.errors import UsageError

FILES = {
    "rollout-harness/run@2": "run.schema.json",
    "rollout-harness/cells@3": "cells.schema.json",
    "rollout-harness/load@1": "load.schema.json",
    "rollout-harness/record@1": "record.schema.json",
}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of the documents whose `schema` field is `name`, e.g. "rollout-harness/run@2"."""
    if name not in FILES:
        raise UsageError(f"no schema {name!r}; known: {', '.join(FILES)}")
    doc: dict[str, Any] = json.loads(resources.files(__name__).joinpath(FILES[name]).read_text())
    return doc
