#!/usr/bin/env bash
# What --parallel does on this machine (issue 11): the same matrix (naive, readiness-prestop, best-practice ×
# set-image, drain × TRIALS) with --parallel 1 and then 2, side by side (bench/side_by_side.sh): wall time, share
# outside the windows, trials excluded, blind time (max gap per run), false losses, each cell's verdict and lost
# range. Not CI: ~15 min with TRIALS=3.
# Usage: bench/parallel.sh [TRIALS (default 3)]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VARIANTS=${VARIANTS:-naive,readiness-prestop,best-practice} exec "$ROOT/bench/side_by_side.sh" "${1:-3}" p1='--parallel 1' p2='--parallel 2'
