#!/usr/bin/env bash
# Build the Traefik ingress controller from the Go module proxy and package it as rollout-harness/traefik:<version>
# (a distroless-style scratch image, ci/scratch-image.sh). The released module is built unmodified, inside a copy of
# its source so that its go.mod's replace directives apply (ci/build-go-module.sh). Idempotent; the binary is cached.
# TRAEFIK_VERSION is pinned to the newest release whose whole package graph the proxy serves (v3.6.12; v3.7.x needs
# modules it refuses: github.com/containous/go-http-auth, the nested github.com/traefik/traefik/dynamic/ext, and in
# v3.7.13 fourteen module versions of ACME DNS-provider SDKs through lego v5).
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
  step "Traefik $TRAEFIK_VERSION"
  bash "$(dirname "$0")/build-go-module.sh" github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" ./cmd/traefik "$BIN" \
    "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
fi
[ "${RH_BINARY_ONLY:-0}" = 1 ] && exit 0  # ci/prebuild.sh: the binary alone (docker may not be up yet)
bash "$(dirname "$0")/scratch-image.sh" "$BIN" traefik "$IMAGE" rh.traefik "$TRAEFIK_VERSION"
echo "$IMAGE"
