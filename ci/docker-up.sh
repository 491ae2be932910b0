#!/usr/bin/env bash
# Make a Docker engine answer on this machine. Idempotent: a Docker that already answers (`docker info`) is used as it
# is, never reconfigured (rollout-harness reads its userland-proxy setting into every result and refuses what it would
# falsify). Otherwise: installs Debian's docker.io if no dockerd is installed (never a second Docker; apt may not
# remove anything), and starts a dockerd whose settings come from its own config file under the cache, not from
# /etc/docker: an OCI-runtime wrapper that drops CAP_SYS_RESOURCE (the VM's bounding set lacks it, so privileged
# containers fail without it) and the userland proxy off, so a refused connection reaches clients as ECONNREFUSED.
# Environment (set by rollout-harness): RH_CACHE (the config, the wrapper and dockerd's log go under it).
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
LOG=$RH_CACHE/logs/dockerd.log
mkdir -p "$(dirname "$LOG")"
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "error: dockerd is not installed and installing it needs root" >&2; exit 3; }
  echo "[docker] installing docker.io from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove docker.io >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove docker.io >/dev/null; } \
    || { echo "error: could not install docker.io with apt-get" >&2; exit 3; }
fi
WRAP=$RH_CACHE/docker/runc-nosysresource
CONF=$RH_CACHE/docker/daemon.json
mkdir -p "$(dirname "$WRAP")"
cat > "$WRAP.tmp" <<'WRAPPER'
#!/bin/sh
# OCI runtime wrapper: remove CAP_SYS_RESOURCE from the container's capabilities, then exec runc.
cmd=""; bundle=""; process=""; prev=""
for a in "$@"; do
  case "$prev" in --bundle|-b) bundle=$a ;; --process|-p) process=$a ;; esac
  case "$a" in
    --bundle=*) bundle=${a#--bundle=} ;;
    --process=*) process=${a#--process=} ;;
    create|run|exec) [ -z "$cmd" ] && cmd=$a ;;
  esac
  prev=$a
done
strip() { # $1 file, $2 jq path of the capabilities object
  [ -f "$1" ] || return 0
  jq -c "if $2 then $2 |= with_entries(.value |= map(select(. != \"CAP_SYS_RESOURCE\"))) else . end" "$1" > "$1.rh" && mv "$1.rh" "$1"
}
case "$cmd" in
  create|run) strip "${bundle:-.}/config.json" .process.capabilities ;;
  exec) [ -n "$process" ] && strip "$process" .capabilities ;;
esac
exec runc "$@"
WRAPPER
chmod 755 "$WRAP.tmp"; mv "$WRAP.tmp" "$WRAP"
echo '{"runtimes":{"rh-runc":{"path":"'$WRAP'"}},"default-runtime":"rh-runc","userland-proxy":false}' > "$CONF"
echo "[docker] starting dockerd with $CONF (log: $LOG)" >&2
setsid nohup dockerd --config-file "$CONF" >>"$LOG" 2>&1 < /dev/null &
for i in $(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
echo "error: dockerd did not start within 60 s; see $LOG" >&2; tail -5 "$LOG" >&2; exit 3
