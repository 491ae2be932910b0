#!/usr/bin/env bash
# One compare matrix under several settings, one after the other in one script, on the same cluster: what a
# setting does to wall time, the share outside the measured windows, excluded trials, blind time, the verdicts and
# the lossy cells' numbers. Not CI (the default matrix takes ~10 min per setting).
# Usage: bench/side_by_side.sh TRIALS LABEL='FLAGS' [LABEL='FLAGS' ...]
#   e.g. bench/side_by_side.sh 3 serial='--no-ahead' ahead=''
# Env: VARIANTS (default: compare's own), TRIGGERS (default set-image,drain), LOSSLESS (variants that must lose
# nothing: a loss there is counted as a false loss; default readiness-prestop,graceful-app,best-practice,prestop-15s),
# RH (the command that runs rollout-harness; default ci/rh; e.g. "python -m harness" from a snapshot of the tree).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TRIALS=${1:?usage: bench/side_by_side.sh TRIALS LABEL=FLAGS [LABEL=FLAGS ...]}
shift
[ $# -ge 1 ] || { echo "side_by_side.sh: give at least one LABEL=FLAGS" >&2; exit 2; }
OUT=$ROOT/bench/results/side-by-side-$(date +%Y%m%d-%H%M%S)
LABELS=()
for setting in "$@"; do
  label=${setting%%=*}
  flags=${setting#*=}
  LABELS+=("$label")
  mkdir -p "$OUT/$label"
  echo "[bench] $label: compare --trials $TRIALS $flags" >&2
  start=$(date +%s)
  # shellcheck disable=SC2086  # the flags are meant to split
  ${RH:-$ROOT/ci/rh} compare ${VARIANTS:+--variants "$VARIANTS"} --triggers "${TRIGGERS:-set-image,drain}" --trials "$TRIALS" \
    --no-pictures --out "$OUT/$label" $flags > "$OUT/$label.md" 2> "$OUT/$label.log" || true
  echo $(( $(date +%s) - start )) > "$OUT/$label/wall"
done
LOSSLESS=${LOSSLESS:-readiness-prestop,graceful-app,best-practice,prestop-15s} \
  "${PYTHON:-$ROOT/.venv/bin/python}" -m bench.side_by_side "$OUT" "${LABELS[@]}"
