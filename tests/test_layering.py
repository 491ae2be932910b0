"""The model is the bottom of the house: the modules after the results (analysis, verdict, gate, report, plot) and
the results themselves load no Kubernetes client, so reading and reporting saved results needs no cluster library."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

BELOW_THE_RESULTS = (
    "pytest_plugin",
    "serving",
    "model",
    "results",
    "analysis",
    "attribution",
    "verdict",
    "gate",
    "report",
    "plot",
    "summary",
    "records",
    "files",
    "schemas",
)


@pytest.mark.parametrize("module", BELOW_THE_RESULTS)
def test_importing_loads_no_kubernetes_client(module: str) -> None:
    code = f"import sys, harness.{module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'urllib3')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert out == "[]", f"harness.{module} loads {out}"
