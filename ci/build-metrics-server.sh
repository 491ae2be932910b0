#!/usr/bin/env bash
# Build metrics-server (the HPA's resource metrics) from the Go module proxy and package it as
# rollout-harness/metrics-server:<version> (a distroless-style scratch image, ci/scratch-image.sh). Built inside a copy
# of the released module's source, as upstream builds it (ci/build-go-module.sh). Idempotent; the
# binary is cached. Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE (default: versions.env next to
# this script). Prints the image tag on stdout.
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
# shellcheck source-path=SCRIPTDIR source=versions.env
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
IMAGE=rollout-harness/metrics-server:$METRICS_SERVER_VERSION
BIN=$CACHE/bin/metrics-server-$METRICS_SERVER_VERSION
step() { echo "[metrics-server $(date +%T)] $*" >&2; }
if [ ! -x "$BIN" ]; then
  step "metrics-server $METRICS_SERVER_VERSION"
  bash "$(dirname "$0")/build-go-module.sh" sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" ./cmd/metrics-server "$BIN" \
    "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
fi
[ "${RH_BINARY_ONLY:-0}" = 1 ] && exit 0  # ci/prebuild.sh: the binary alone (docker may not be up yet)
bash "$(dirname "$0")/scratch-image.sh" "$BIN" metrics-server "$IMAGE" rh.metrics-server "$METRICS_SERVER_VERSION"
echo "$IMAGE"
