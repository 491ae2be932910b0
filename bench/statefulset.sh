#!/usr/bin/env bash
# The same pods as a Deployment and as a StatefulSet (issue 12), side by side in one script: VARIANTS × set-image,
# drain × TRIALS with --kind deployment, then --kind statefulset. Prints both comparison tables. Not CI:
# ~20 min with the defaults.
# Usage: bench/statefulset.sh [TRIALS (default 2)] [extra compare flags]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-2}
shift || true
VARIANTS=${VARIANTS:-naive,readiness-prestop,best-practice}
OUT=$ROOT/bench/results/statefulset-$(date +%Y%m%d-%H%M%S)
for kind in deployment statefulset; do
  echo "## --kind $kind"
  "$ROOT/ci/rh" compare --kind "$kind" --variants "$VARIANTS" --triggers set-image,drain --trials "$TRIALS" \
    --no-pictures --out "$OUT/$kind" "$@" 2> "$OUT-$kind.log" || true
done
