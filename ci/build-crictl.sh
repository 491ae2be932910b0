#!/usr/bin/env bash
# Build crictl (optional) from the Go module proxy, inside a copy of its released module (ci/build-go-module.sh).
# kind uses crictl only to tell that a node already has an image, and then skips loading it again (0.4 s instead of
# ~7 s per image on 2 cores); `up` copies it onto the nodes that lack it (harness/cluster.py: _crictl_on_nodes). Its
# compile takes ~120 CPU-seconds, so the cold build does not wait for it when a background build already makes it
# (ci/prebuild.sh, beside the tests in CI: its lock is held) and leaves it to that one. Never fails: without crictl
# every load is a full one. Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE.
set -uo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
# shellcheck source-path=SCRIPTDIR source=versions.env
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
OUT=$CACHE/bin/crictl
step() { echo "[build $(date +%T)] $*" >&2; }
{ [ -x "$OUT" ] || [ -f "$CACHE/crictl.unavailable" ]; } && exit 0
mkdir -p "$CACHE/bin"
if ! flock -n "$OUT.lock" true 2>/dev/null; then
  step "crictl $CRICTL_VERSION: being built in the background; not waited for"
  exit 0
fi
step "crictl $CRICTL_VERSION (optional)"
bash "$(dirname "$0")/build-go-module.sh" sigs.k8s.io/cri-tools "$CRICTL_VERSION" ./cmd/crictl "$OUT"
rc=$?
if [ "$rc" = 3 ]; then
  step "crictl is not on the Go module proxy here; continuing without it"
  touch "$CACHE/crictl.unavailable"
elif [ "$rc" != 0 ]; then
  step "crictl did not build (exit $rc); continuing without it"
fi
exit 0
