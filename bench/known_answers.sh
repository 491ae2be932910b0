#!/usr/bin/env bash
# False-loss and detection rates of the harness itself (issue 8): TRIALS trials each of best-practice × set-image
# (must lose nothing) and naive × set-image (must lose >= 3 % in the disruption phase), interleaved, so every
# best-practice trial runs right after a naive one (the order that used to show false losses). Not CI: ~40 min.
# Usage: bench/known_answers.sh [TRIALS (default 20)] [extra compare flags]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-20}
shift || true
OUT=$ROOT/bench/results/known-answers-$(date +%Y%m%d-%H%M%S)
"$ROOT/ci/rh" compare --variants naive,best-practice --triggers set-image --trials "$TRIALS" --out "$OUT" "$@"
"$ROOT/.venv/bin/python" - "$OUT" <<'PY'
import sys
from pathlib import Path
from harness.results import load_results
from harness.model import Phase, Status

runs = load_results(Path(sys.argv[1]))
for variant, want in (("best-practice", "false losses"), ("naive", "detections")):
    rs = [r for r in runs if r.variant == variant]
    used = [r for r in rs if r.status is Status.USED]
    if variant == "naive":
        hits = [r for r in used if r.phases[Phase.DISRUPTION].fail_pct >= 3.0]
    else:
        hits = [r for r in used if r.lost > 0]
    excluded = {s.value: sum(1 for r in rs if r.status is s) for s in Status if s is not Status.USED}
    print(f"{variant} × set-image: {want} {len(hits)}/{len(used)} used trials ({len(rs)} run; excluded {excluded})")
    for r in hits if variant != "naive" else []:
        print(f"  {r.name}: lost {r.lost_by_kind} at {[round(f.start, 2) for f in r.failure_samples[:8]]}")
PY
