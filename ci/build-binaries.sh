#!/usr/bin/env bash
# Build kind, the Kubernetes binaries, etcd and pause from the Go module proxy (crictl: build-crictl.sh).
# Output: $CACHE/bin. Idempotent: a binary that exists is not rebuilt.
# Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE (default: versions.env next to this script).
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
export GOFLAGS=-modcacherw GOTOOLCHAIN=local GOBIN=$CACHE/bin
mkdir -p "$CACHE/bin" "$CACHE/src"
command -v go >/dev/null || { echo "error: the Go toolchain is needed for the offline build (install Go >= 1.24)" >&2; exit 3; }
command -v jq >/dev/null || { echo "error: jq is needed (apt-get install jq)" >&2; exit 3; }
step() { echo "[build $(date +%T)] $*" >&2; }

# kind needs nothing else: it compiles beside the Kubernetes binaries, in a process group of its own
# (set -m) that the trap stops if this script ends first (a failure)
BESIDE=""
trap 'for g in $BESIDE; do kill -- "-$g" 2>/dev/null || true; done' EXIT
KIND=""
if [ ! -x "$CACHE/bin/kind" ]; then
  step "kind $KIND_VERSION (beside)"
  set -m
  CGO_ENABLED=0 go install sigs.k8s.io/kind@"$KIND_VERSION" &
  KIND=$! BESIDE="$BESIDE $!"
  set +m
fi
SV=v0.${K8S_VERSION#v1.}; MINOR=$(cut -d. -f2 <<<"$K8S_VERSION")
K8S_BINS="kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy"
missing=""; for b in $K8S_BINS; do [ -x "$CACHE/bin/$b" ] || missing="$missing $b"; done
J=""
if [ -n "$missing" ] || [ ! -x "$CACHE/bin/pause" ]; then
  step "kubernetes $K8S_VERSION module"
  mkdir -p "$CACHE/src/k8s"; cd "$CACHE/src/k8s"
  [ -f go.mod ] || go mod init offline.local/k8s >/dev/null 2>&1
  go mod edit -go=1.24.0 -godebug=default=go1.24 -require=k8s.io/kubernetes@"$K8S_VERSION"
  J=$(go mod download -json k8s.io/kubernetes@"$K8S_VERSION")
  KMOD=$(jq -r .GoMod <<<"$J"); KDIR=$(jq -r .Dir <<<"$J")
  for m in $(sed -nE 's#^[[:space:]]*(k8s\.io/[a-z0-9-]+) => \./staging/.*#\1#p' "$KMOD"); do go mod edit -replace="$m=$m@$SV"; done
fi
if [ -n "$missing" ]; then
  COMMIT=$(jq -r '.Origin.Hash // empty' <<<"$J"); COMMIT=${COMMIT:-0000000000000000000000000000000000000000}
  LD="-s -w"
  for kv in gitVersion=$K8S_VERSION gitMajor=1 gitMinor=$MINOR gitCommit=$COMMIT gitTreeState=clean buildDate=2026-01-01T00:00:00Z; do
    LD="$LD -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"; done
  # one go build for all of them: their shared packages compile once and their links (one core each) run side by side
  step "compile$missing"
  OUT=$CACHE/bin/.compiling; rm -rf "$OUT"; mkdir -p "$OUT"
  # shellcheck disable=SC2086  # one package per word
  CGO_ENABLED=0 go build -mod=mod -trimpath -tags selinux,notest -ldflags "$LD" -o "$OUT/" $(printf 'k8s.io/kubernetes/cmd/%s ' $missing)
  for b in $missing; do mv "$OUT/$b" "$CACHE/bin/$b"; done
  rm -rf "$OUT"
fi
"$CACHE/bin/kubeadm" version -o short | grep -qx "$K8S_VERSION"
"$CACHE/bin/kubeadm" config images list --kubernetes-version "$K8S_VERSION" > "$CACHE/images.txt"
ETCD_TAG=$(awk -F: '/\/etcd:/{print $2}' "$CACHE/images.txt")
PAUSE_TAG=$(awk -F: '/\/pause:/{print $2}' "$CACHE/images.txt")

if [ ! -x "$CACHE/bin/pause" ]; then
  step "pause $PAUSE_TAG"
  KDIR=$(jq -r .Dir <<<"$J")
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_TAG-offline" -o "$CACHE/bin/pause" "$KDIR/build/pause/linux/pause.c"
  strip "$CACHE/bin/pause"
fi
if [ ! -x "$CACHE/bin/etcd" ]; then
  step "etcd ${ETCD_TAG%-*}"
  mkdir -p "$CACHE/src/etcd"; cd "$CACHE/src/etcd"
  [ -f go.mod ] || go mod init offline.local/etcd >/dev/null 2>&1
  go mod edit -require=go.etcd.io/etcd/server/v3@v"${ETCD_TAG%-*}"
  CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$CACHE/bin/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$CACHE/bin/etcd.tmp" "$CACHE/bin/etcd"
fi
[ -z "$KIND" ] || wait "$KIND" || { echo "error: kind $KIND_VERSION did not build (go install sigs.k8s.io/kind@$KIND_VERSION)" >&2; exit 1; }
# kindnetd is not on the Go module proxy (nested module, 404), so the cluster uses a static ptp CNI instead
# (see harness/network.py: setup_cni).
step "binaries ready in $CACHE/bin"
