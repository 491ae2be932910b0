#!/usr/bin/env bash
# Install what the load-generator benchmark needs (vegeta, wrk, the venv), then run it.
# Usage: bench/run.sh [bench_load.py flags], e.g. bench/run.sh --seconds 3 --rates 500,2000
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
VEGETA_VERSION=v12.13.0 # pinned; builds with Go >= 1.22 (checked with go1.26)
TOOLS=${RH_CACHE:-$HOME/.cache/rollout-harness}/tools
VEGETA=$TOOLS/vegeta
VENV=${VENV:-$ROOT/.venv}
say() { echo "[bench $(date +%T)] $*" >&2; }

# Only the tools asked for (--tools, default all three) are installed.
tools=ours,vegeta,wrk prev=""
for a in "$@"; do
  [ "$prev" = --tools ] && tools=$a
  case $a in --tools=*) tools=${a#--tools=} ;; esac
  prev=$a
done
wants() { case ",$tools," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# vegeta: built from the Go module proxy into $TOOLS, rebuilt only if missing or another version.
have=""
[ -x "$VEGETA" ] && command -v go >/dev/null &&
  have=$(go version -m "$VEGETA" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/tsenart/vegeta/v12" {print $3}')
if wants vegeta && [ "$have" != "$VEGETA_VERSION" ]; then
  command -v go >/dev/null || { echo "error: the Go toolchain is needed to build vegeta (install Go >= 1.22)" >&2; exit 3; }
  say "building vegeta $VEGETA_VERSION into $TOOLS"
  mkdir -p "$TOOLS"
  GOBIN=$TOOLS GOTOOLCHAIN=local GOFLAGS=-modcacherw CGO_ENABLED=0 go install github.com/tsenart/vegeta/v12@"$VEGETA_VERSION"
fi

# wrk: from Debian's packages.
if wants wrk && ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  say "installing wrk"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# The project's venv (tabulate comes with the project's dependencies, aiohttp for the probe app with its extra).
if ! "$VENV/bin/python" -c 'import aiohttp, tabulate, harness.load' 2>/dev/null; then
  say "setting up $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -e "$ROOT[probe]"
fi

cd "$ROOT"
exec "$VENV/bin/python" -m bench.bench_load --vegeta "$VEGETA" "$@"
