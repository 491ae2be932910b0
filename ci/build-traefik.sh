#!/usr/bin/env bash
# Build the Traefik ingress controller from the Go module proxy and package it as rollout-harness/traefik:<version>
# (a distroless-style scratch image, ci/scratch-image.sh). The released module is built unmodified, inside a copy of
# its source so that its go.mod's replace directives apply, as upstream builds it. Idempotent; the binary is cached.
# TRAEFIK_VERSION is pinned to the newest release whose whole package graph the proxy serves (v3.6.12; v3.7.x needs
# modules it refuses: github.com/containous/go-http-auth, the nested github.com/traefik/traefik/dynamic/ext, and in
# v3.7.13 thirteen ACME DNS-provider SDKs through lego v5).
# Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE (default: versions.env next to this script).
# Prints the image tag on stdout.
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
# shellcheck source-path=SCRIPTDIR source=versions.env
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
IMAGE=rollout-harness/traefik:$TRAEFIK_VERSION
BIN=$CACHE/bin/traefik-$TRAEFIK_VERSION
step() { echo "[traefik $(date +%T)] $*" >&2; }
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || { echo "error: the Go toolchain is needed to build Traefik offline" >&2; exit 3; }
  command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 3; }
  export GOFLAGS="-modcacherw -mod=mod" GOTOOLCHAIN=local
  step "Traefik $TRAEFIK_VERSION (module source, then the package graph of cmd/traefik)"
  D=$(go mod download -json github.com/traefik/traefik/v3@"$TRAEFIK_VERSION" | jq -r '.Dir // empty')
  [ -n "$D" ] || { echo "error: the Go module proxy did not serve github.com/traefik/traefik/v3@$TRAEFIK_VERSION" >&2; exit 3; }
  S=$CACHE/src/traefik-$TRAEFIK_VERSION; rm -rf "$S"; mkdir -p "$CACHE/bin" "$CACHE/src"
  cp -r "$D" "$S"; chmod -R u+w "$S"
  (cd "$S" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$BIN.tmp" ./cmd/traefik)
  mv "$BIN.tmp" "$BIN"; rm -rf "$S"
fi
bash "$(dirname "$0")/scratch-image.sh" "$BIN" traefik "$IMAGE" rh.traefik "$TRAEFIK_VERSION"
echo "$IMAGE"
