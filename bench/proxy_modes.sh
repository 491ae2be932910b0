#!/usr/bin/env bash
# Loss and endpoint lag per kube-proxy mode (issue 9): the cluster is recreated in each mode and the same cells
# run in each: naive, readiness and readiness-prestop × set-image, TRIALS trials. Not CI: ~8 min per mode.
# Leaves the cluster in iptables mode (the default). Usage: bench/proxy_modes.sh [TRIALS (default 3)] [MODES]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-3}
MODES=${2:-iptables nftables}
OUT=$ROOT/bench/results/proxy-modes-$(date +%Y%m%d-%H%M%S)
for mode in $MODES; do
  "$ROOT/ci/rh" down
  "$ROOT/ci/rh" up --proxy-mode "$mode"
  "$ROOT/ci/rh" compare --variants naive,readiness,readiness-prestop --triggers set-image --trials "$TRIALS" --no-up --out "$OUT/$mode"
done
"$ROOT/ci/rh" down
"$ROOT/ci/rh" up --proxy-mode iptables
"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import statistics
import sys
from pathlib import Path

from tabulate import tabulate

from harness.results import load_results

from harness.model import Status

rows = []
for d in sorted(Path(sys.argv[1]).iterdir()):
    runs = load_results(d)
    for variant in dict.fromkeys(r.variant for r in runs):
        used = [r for r in runs if r.variant == variant and r.status is Status.USED]
        lag = [r.attribution.max_endpoint_lag_ms for r in used if r.attribution and r.attribution.endpoint_lag_ms]
        kinds: dict[str, int] = {}
        for r in used:
            for k, n in r.lost_by_kind.items():
                kinds[k] = kinds.get(k, 0) + n
        rows.append([
            d.name, variant, f"{len(used)}/{sum(1 for r in runs if r.variant == variant)}",
            f"{min(r.lost for r in used)}-{max(r.lost for r in used)}" if used else "-",
            f"{statistics.mean(r.phases['disruption'].fail_pct for r in used):.2f}" if used else "-",
            ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "-",
            f"{statistics.median(lag):.0f}" if lag else "-", f"{max(lag):.0f}" if lag else "-",
        ])
print(tabulate(rows, headers=["proxy mode", "variant", "used", "lost", "disruption loss %", "failures (all trials)",
                              "endpoint lag ms (median)", "endpoint lag ms (max)"], tablefmt="github", disable_numparse=True))
PY
