#!/usr/bin/env bash
# Build CoreDNS from the Go module proxy (a minimal plugin set: no forward, no loop, so no query ever leaves the
# cluster) and tag it as the image kubeadm's coredns Deployment names. Idempotent; the binary is cached.
# Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE (default: versions.env next to this script).
# Prints the image tag on stdout.
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
step() { echo "[coredns $(date +%T)] $*" >&2; }
BIN=$CACHE/bin/coredns-$COREDNS_VERSION
mkdir -p "$CACHE/bin"
# one build of the binary at a time: a second caller waits for it, then finds it built
# shellcheck source=build-lock.sh
. "$(dirname "$0")/build-lock.sh"
build_lock "$BIN.lock"
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || { echo "error: the Go toolchain is needed to build CoreDNS offline" >&2; exit 3; }
  step "CoreDNS $COREDNS_VERSION (kubernetes, health, ready, errors, cache, reload, loadbalance, log, prometheus)"
  S=$CACHE/src/coredns; mkdir -p "$S"; cd "$S"
  cat > main.go <<'GO'
// CoreDNS with the plugins a cluster's DNS needs and nothing that talks to the outside (no forward, no loop).
package main

import (
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"

	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
GO
  [ -f go.mod ] || GOTOOLCHAIN=local go mod init offline.local/coredns >/dev/null 2>&1
  export GOFLAGS=-modcacherw GOTOOLCHAIN=local
  go mod edit -require=github.com/coredns/coredns@"$COREDNS_VERSION"
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN.tmp" .
  mv "$BIN.tmp" "$BIN"
fi
exec 9>&-
[ "${RH_BINARY_ONLY:-0}" = 1 ] && exit 0  # ci/prebuild.sh: the binary alone (docker may not be up yet)
[ -f "$CACHE/images.txt" ] || { echo "error: $CACHE/images.txt missing; run build-binaries.sh first" >&2; exit 3; }
IMAGE=$(grep '/coredns:' "$CACHE/images.txt")
if [ "$(docker image inspect -f '{{index .Config.Labels "rh.coredns"}}' "$IMAGE" 2>/dev/null)" != "$COREDNS_VERSION" ]; then
  step "image $IMAGE"
  C=$CACHE/ctx/coredns; mkdir -p "$C"; cp "$BIN" "$C/coredns"
  printf 'FROM scratch\nCOPY coredns /coredns\nENTRYPOINT ["/coredns"]\n' > "$C/Dockerfile"
  docker build -q --label rh.coredns="$COREDNS_VERSION" -t "$IMAGE" "$C" >/dev/null
fi
echo "$IMAGE"
