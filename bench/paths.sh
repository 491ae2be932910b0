#!/usr/bin/env bash
# Every path traffic takes, each lossy configuration beside its fix, TRIALS trials each (default 3), then ONE table of
# them all (`rollout-harness report` over the runs: its options column names each row's path), and the share of the
# tail that reached the new pods in the h2 × scale rows (RunResult.tail_new_pods_pct: pinned clients and a maximum
# connection age). The README's "More paths" table is its output. Not CI: ~35 min.
# Usage: bench/paths.sh [TRIALS (default 3)] [extra compare flags]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-3}
shift || true
OUT=$ROOT/bench/results/paths-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
path() {  # NAME COMPARE-FLAGS...: exit 1 (a lossy cell) is an answer here, not a failure
  local name=$1 rc=0
  shift
  echo "[paths $(date +%T)] $name: compare $*" >&2
  "$ROOT/ci/rh" compare --trials "$TRIALS" --out "$OUT/$name" "$@" "${EXTRA[@]}" > "$OUT/$name.md" 2> "$OUT/$name.log" || rc=$?
  [ "$rc" -le 1 ] || { echo "[paths] $name failed (exit $rc): $OUT/$name.log" >&2; tail -3 "$OUT/$name.log" >&2; exit "$rc"; }
}
EXTRA=("$@")
path service --variants naive,best-practice --triggers set-image
path ingress --variants naive,best-practice --triggers set-image --via ingress
path ingress-retry --variants naive,best-practice --triggers set-image --via ingress-retry
path h2-grpc --variants naive,best-practice --triggers set-image --modes h2,grpc
path max-conn-age --variants best-practice,max-conn-age --triggers scale --modes h2 --tail 10
path daemonset --variants naive,best-practice,etp-local --triggers set-image --kind daemonset
path hpa --variants hpa-naive,hpa-prestop --triggers hpa-scale-in
path registry --variants registry-naive,registry-down-prestop --triggers set-image --discovery registry
"$ROOT/ci/rh" report "$OUT"/*/ --format md || [ $? -le 1 ]
"$ROOT/.venv/bin/python" - "$OUT/max-conn-age" <<'PY'
import sys
from pathlib import Path
from harness.results import load_results

for r in sorted(load_results(Path(sys.argv[1])), key=lambda r: r.name):
    share = r.tail_new_pods_pct
    print(f"{r.name}: the tail's answers from the {len(r.new_pods)} new pods: {'-' if share is None else f'{share:.0f} %'}")
PY
echo "results: $OUT" >&2
