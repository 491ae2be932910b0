#!/usr/bin/env bash
# node-down (issue 12): VARIANTS × node-down × TRIALS, then a table per run: when the node was called NotReady, when
# its pods were replaced, and the requests lost before and after the endpoints left (after: new connections that
# reuse a source port of an earlier SYN to a frozen pod follow kube-proxy's stale conntrack entry; see the README).
# Usage: bench/node_down.sh [TRIALS (default 2)] [extra compare flags]   |   bench/node_down.sh --table DIR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--table" ]; then
  OUT=$2
else
  TRIALS=${1:-2}
  shift || true
  OUT=$ROOT/bench/results/node-down-$(date +%Y%m%d-%H%M%S)
  "$ROOT/ci/rh" compare --variants "${VARIANTS:-fast-failover,best-practice}" --triggers node-down --trials "$TRIALS" \
    --rollout-timeout 420s --no-pictures --out "$OUT" "$@" > "$OUT.md" 2> "$OUT.log" || true
fi
"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import sys
from pathlib import Path
from harness.results import load_results

print("| variant | trial | NotReady after s | replaced after s | lost while endpoints listed it | lost after they left | kinds |")
print("|---|---|---|---|---|---|---|")
for r in sorted(load_results(Path(sys.argv[1])), key=lambda r: (r.variant, r.trial)):
    assert r.window is not None and r.summary is not None
    t0 = r.window.trigger_s
    marks = {e.state.split(" ", 1)[-1]: e.t for e in r.events if e.source == "harness" and e.name == "node"}
    gone = marks.get("NotReady", float("inf")) + 1  # the endpoints leave with the NotReady status (within 1 s)
    before = sum(v for s in r.summary.timeline if s["t"] < gone for k, v in s.items() if k not in ("t", "ok"))
    replaced = next((t for k, t in marks.items() if "replaced" in k or "evicted" in k), None)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(r.lost_by_kind.items()))
    print(
        f"| {r.variant} | {r.trial} | {marks.get('NotReady', 0) - t0:.0f} | "
        f"{(replaced - t0) if replaced else float('nan'):.0f} | {before} | {r.lost - before} | {kinds} |"
    )
PY
