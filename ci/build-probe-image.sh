#!/usr/bin/env bash
# Build the probe app images rollout-harness/probe-app:v1 and :v2 (same code, different VERSION; PROBE_TAG_PREFIX
# replaces rollout-harness/probe-app, e.g. to try a change without touching the cluster's images).
# PROBE_BASE: the base image; by default the offline python base (debootstrap + python3-aiohttp), built once and
# cached; on the stock path rollout-harness passes the pinned python image it pulled (versions.env PYTHON_BASE).
# Wheels: PROBE_WHEELS (versions.env) downloaded once per version set and architecture into $RH_CACHE/probe-wheels
# with RH_PYTHON's pip (default python3), then copied into the build context.
# Environment (set by rollout-harness): RH_CACHE, RH_PROBE_APP_DIR (the build context: Dockerfile + the probe_app package, whose
# modules the image copies whole),
# RH_VERSIONS_FILE (default: versions.env next to this script), RH_PYTHON; RH_STAGE=base: the base image only.
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE
APP=${RH_PROBE_APP_DIR:-}
FILES="Dockerfile __init__.py app.py h2app.py grpcapp.py registry.py"
for f in $FILES; do [ -f "$APP/$f" ] \
  || { echo "error: RH_PROBE_APP_DIR must name the probe app directory ($FILES); got '$APP'" >&2; exit 3; }; done
OFFLINE_BASE=rollout-harness/python-base:bookworm
BASE=${PROBE_BASE:-$OFFLINE_BASE}
step() { echo "[probe-image $(date +%T)] $*" >&2; }
ARCH=$(uname -m)
# what the images are made of: the app's modules (the image copies them all), its recipe, the wheels and (when not
# the offline one) the base
HASH=$( { cat "$APP"/*.py "$APP/Dockerfile"; echo "$PROBE_PYTHON $PROBE_WHEELS $ARCH"; [ "$BASE" = "$OFFLINE_BASE" ] || echo "$BASE"; } | sha256sum | cut -c1-12)
if [ "$BASE" = "$OFFLINE_BASE" ] && ! docker image inspect "$BASE" >/dev/null 2>&1; then
  if [ -f "$CACHE/python-base.tar" ]; then docker load -i "$CACHE/python-base.tar" >/dev/null
  else
    command -v debootstrap >/dev/null || { echo "error: debootstrap is needed to build the offline python base" >&2; exit 3; }
    R=$CACHE/pyroot; rm -rf "$R"; mkdir -p "$CACHE"
    step "debootstrap python base (python3, python3-aiohttp)"
    debootstrap --variant=minbase --include=python3,python3-aiohttp "$DEBIAN_SUITE" "$R" "${RH_DEBIAN_MIRROR:-http://deb.debian.org/debian}" \
      > "$CACHE/debootstrap-python.log" 2>&1 || { tail -20 "$CACHE/debootstrap-python.log" >&2; exit 1; }
    chroot "$R" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /usr/share/locale'
    tar -C "$R" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . | docker import - "$BASE" >/dev/null
    rm -rf "$R"; docker save "$BASE" -o "$CACHE/python-base.tar"
  fi
fi
[ "${RH_STAGE:-}" = base ] && exit 0  # rollout-harness: the base alone, made while the Kubernetes binaries compile
context() {  # the build context, once: the app's files and the wheels (downloaded once per version set)
  [ -n "${CTX:-}" ] && return
  W=$CACHE/probe-wheels/$(echo "$PROBE_PYTHON $PROBE_WHEELS $ARCH" | sha256sum | cut -c1-12)
  if [ ! -f "$W/.complete" ]; then
    step "download wheels for Python $PROBE_PYTHON on $ARCH: $PROBE_WHEELS"
    rm -rf "$W"; mkdir -p "$W"
    # shellcheck disable=SC2086  # one requirement per word
    "${RH_PYTHON:-python3}" -m pip download --quiet --no-deps --only-binary=:all: --platform "manylinux2014_$ARCH" \
      --python-version "$PROBE_PYTHON" --implementation cp --abi "cp${PROBE_PYTHON/./}" -d "$W" $PROBE_WHEELS \
      || { echo "error: cannot download the probe image's wheels ($PROBE_WHEELS) with ${RH_PYTHON:-python3} -m pip" >&2; exit 3; }
    touch "$W/.complete"
  fi
  CTX=$(mktemp -d); trap 'rm -rf "$CTX"' EXIT
  cp "$APP/Dockerfile" "$APP"/*.py "$CTX/"
  mkdir "$CTX/wheels"; cp "$W"/*.whl "$CTX/wheels/"
}
for v in v1 v2; do
  tag=${PROBE_TAG_PREFIX:-rollout-harness/probe-app}:$v
  if [ "$(docker image inspect -f '{{index .Config.Labels "rh.src"}}' "$tag" 2>/dev/null)" = "$HASH" ]; then continue; fi
  context
  step "build $tag"
  docker build -q --build-arg BASE="$BASE" --build-arg VERSION=$v --label rh.src="$HASH" -t "$tag" "$CTX" >/dev/null
done
step "probe images ready"
