#!/usr/bin/env bash
# Build the CNCF distribution registry (github.com/distribution/distribution/v3/cmd/registry) from the Go module proxy,
# for the test of the stock path's pull by digest against a registry on 127.0.0.1 (tests/test_pull.py). Dev and CI
# only: not in the wheel. Idempotent; the binary is cached (cold: ~3 min on 2 cores, most of it downloading modules).
# Environment: RH_CACHE (the test sets it as rollout-harness does). Prints the binary's path on stdout.
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (e.g. RH_CACHE=~/.cache/rollout-harness)}"
REGISTRY_VERSION=v3.1.2
DIR=$RH_CACHE/registry-$REGISTRY_VERSION
mkdir -p "$DIR"
# one build at a time: a second caller (the test while ci/prebuild.sh's runs) waits for it
# shellcheck source=build-lock.sh
. "$(dirname "$0")/build-lock.sh"
build_lock "$DIR.lock"
if [ ! -x "$DIR/registry" ]; then
  command -v go >/dev/null || { echo "error: the Go toolchain is needed to build the registry" >&2; exit 3; }
  echo "[registry $(date +%T)] distribution $REGISTRY_VERSION" >&2
  GOFLAGS=-modcacherw GOTOOLCHAIN=local GOBIN=$DIR CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w" github.com/distribution/distribution/v3/cmd/registry@"$REGISTRY_VERSION"
fi
echo "$DIR/registry"
