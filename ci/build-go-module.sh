#!/usr/bin/env bash
# Build one command of a released Go module as upstream builds it: inside a copy of the module's source from the Go
# module proxy, so that its go.mod (go and godebug lines, replace directives) applies; static, stripped, trimmed.
# Usage: build-go-module.sh MODULE VERSION PACKAGE OUTPUT [LDFLAGS]   (PACKAGE relative to the module, e.g. ./cmd/x)
# Writes OUTPUT only when the build succeeds. Exits 3 when a prerequisite is missing or the proxy refuses the module.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: build-go-module.sh MODULE VERSION PACKAGE OUTPUT [LDFLAGS]" >&2; exit 2; }
MOD=$1 VER=$2 PKG=$3 OUT=$4 LD=${5:-}
mkdir -p "$(dirname "$OUT")"
# one build of OUT at a time: a second caller (a foreground one while ci/prebuild.sh's runs) waits, then finds it built
# shellcheck source=build-lock.sh
. "$(dirname "$0")/build-lock.sh"
build_lock "$OUT.lock"
[ -x "$OUT" ] && exit 0
command -v go >/dev/null || { echo "error: the Go toolchain is needed to build $MOD offline" >&2; exit 3; }
command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 3; }
export GOFLAGS="-modcacherw -mod=mod" GOTOOLCHAIN=local CGO_ENABLED=0
J=$(go mod download -json "$MOD@$VER" 2>/dev/null || true)
D=$(jq -r '.Dir // empty' <<<"${J:-{\}}")
[ -n "$D" ] || { echo "error: the Go module proxy did not serve $MOD@$VER" >&2; exit 3; }
S=$(mktemp -d); trap 'rm -rf "$S"' EXIT
cp -r "$D/." "$S"; chmod -R u+w "$S"
(cd "$S" && go build -trimpath -ldflags "-s -w $LD" -o "$OUT.tmp" "$PKG")
mv "$OUT.tmp" "$OUT"
