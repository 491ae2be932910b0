#!/usr/bin/env bash
# Build metrics-server (the HPA's resource metrics) from the Go module proxy and package it as
# rollout-harness/metrics-server:<version> (a distroless-style scratch image, ci/scratch-image.sh). Built inside a copy
# of the released module's source, as upstream builds it (its go.mod's go and godebug lines apply). Idempotent; the
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
  command -v go >/dev/null || { echo "error: the Go toolchain is needed to build metrics-server offline" >&2; exit 3; }
  command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 3; }
  export GOFLAGS="-modcacherw -mod=mod" GOTOOLCHAIN=local
  step "metrics-server $METRICS_SERVER_VERSION"
  D=$(go mod download -json sigs.k8s.io/metrics-server@"$METRICS_SERVER_VERSION" | jq -r '.Dir // empty')
  [ -n "$D" ] || { echo "error: the Go module proxy did not serve sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" >&2; exit 3; }
  S=$CACHE/src/metrics-server-$METRICS_SERVER_VERSION; rm -rf "$S"; mkdir -p "$CACHE/bin" "$CACHE/src"
  cp -r "$D" "$S"; chmod -R u+w "$S"
  (cd "$S" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
    -o "$BIN.tmp" ./cmd/metrics-server)
  mv "$BIN.tmp" "$BIN"; rm -rf "$S"
fi
bash "$(dirname "$0")/scratch-image.sh" "$BIN" metrics-server "$IMAGE" rh.metrics-server "$METRICS_SERVER_VERSION"
echo "$IMAGE"
