#!/usr/bin/env bash
# Client-side discovery (issue 12), side by side in one script: VARIANTS × set-image, drain × TRIALS, from the
# client pod through the Service (--client pod), then resolving the headless Service through DNS and calling pod
# IPs (--discovery dns, answers kept for their 5 s TTL), then the same with answers kept longer (--dns-cache for
# each of CACHES, default 15 and 30 s: 30 s is a JVM's default). Prints the comparison tables. Not CI: ~35 min
# with the defaults.
# Usage: bench/discovery.sh [TRIALS (default 2)] [extra compare flags]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:-2}
shift || true
VARIANTS=${VARIANTS:-naive,readiness-prestop,prestop-15s,best-practice}
OUT=$ROOT/bench/results/discovery-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
run() { # name, flags...
  local name=$1; shift
  echo "## $name"
  "$ROOT/ci/rh" compare --variants "$VARIANTS" --triggers set-image,drain --trials "$TRIALS" \
    --no-pictures --out "$OUT/$name" "$@" 2> "$OUT/$name.log" || true
}
run service --client pod "$@"
run dns --discovery dns "$@"
for c in ${CACHES:-15 30}; do
  run "dns-cache$c" --discovery dns --dns-cache "$c" "$@"
done
