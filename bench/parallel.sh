#!/usr/bin/env bash
# What --parallel does on this machine (issue 11): the same matrix (naive, readiness-prestop, best-practice ×
# set-image, drain × TRIALS) with --parallel 1 and then 2, in one script. Prints per N: wall time, measured
# window-seconds per wall second (1 - that is the share outside the windows at N=1), trials excluded (unreliable/noisy/failed), blind time (max gap per run) and the
# false losses (best-practice and readiness-prestop must lose nothing). Not CI: ~15 min with TRIALS=3.
# Usage: bench/parallel.sh [TRIALS (default 3)] [extra compare flags]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-3}
shift || true
OUT=$ROOT/bench/results/parallel-$(date +%Y%m%d-%H%M%S)
for n in 1 2; do
  start=$(date +%s)
  "$ROOT/ci/rh" compare --variants naive,readiness-prestop,best-practice --triggers set-image,drain --trials "$TRIALS" \
    --parallel "$n" --no-pictures --out "$OUT/p$n" "$@" > "$OUT-p$n.md" 2> "$OUT-p$n.log" || true
  echo $(( $(date +%s) - start )) > "$OUT/p$n/wall"
done
"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import statistics
import sys
from pathlib import Path
from harness.results import Status, load_results

out = Path(sys.argv[1])
print("| parallel | runs | wall s | window s per wall s | excluded | max gap ms (median / max) | false losses | naive lost (min-max) |")
print("|---|---|---|---|---|---|---|---|")
for n in (1, 2):
    runs = load_results(out / f"p{n}")
    wall = float((out / f"p{n}" / "wall").read_text())
    measured = sum(r.generator.wall_seconds for r in runs if r.generator)
    excluded = sum(1 for r in runs if r.status is not Status.USED)
    gaps = [r.blindness.max_gap_ms for r in runs if r.blindness]
    false = [r for r in runs if r.variant != "naive" and r.status is Status.USED and r.lost > 0]
    naive = [r.lost for r in runs if r.variant == "naive" and r.status is Status.USED]
    print(
        f"| {n} | {len(runs)} | {wall:.0f} | {measured / wall:.2f} | {excluded} | "
        f"{statistics.median(gaps):.0f} / {max(gaps):.0f} | {len(false)} of {len(runs) - len(naive) - excluded} | "
        f"{min(naive, default=0)}-{max(naive, default=0)} |"
    )
    for r in false:
        print(f"  false loss {r.name}: {r.lost_by_kind}")
PY
