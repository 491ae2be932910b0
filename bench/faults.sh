#!/usr/bin/env bash
# The fault bench (bench/faults.py): kill -9 at 21 moments of drain and node-down runs and 3 of `up`, an API server
# paused 30 s and a dockerd restart during runs; after each, `up` repairs and `census` must find nothing left.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m bench.faults "$@"
