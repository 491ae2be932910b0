# Sourced by the Go builds. build_lock FILE: take the lock FILE on fd 9 (one build of a binary at a time). When a
# background build (ci/prebuild.sh: the lowest CPU and I/O priority) holds it, the caller needs its binary now: that
# build is raised to the caller's priority (best effort: lowering a nice value needs root), then waited for, instead of
# crawling on while everything else runs before it.
build_lock() {
  exec 9>"$1"
  if ! flock -n 9; then
    local g
    g=$(cat "$1.holder" 2>/dev/null || true)
    if [ -n "$g" ]; then
      echo "[build] $(basename "$1" .lock) is being built in the background: raised to this build's priority, waited for" >&2
      { echo 0 > "/proc/$g/autogroup"; renice -n "$(nice)" -g "$g"; ionice -c 2 -n 4 -P "$g"; } >/dev/null 2>&1 || true
    fi
    flock 9
  fi
  ps -o pgid= -p $$ | tr -d ' ' > "$1.holder"  # this build's process group, for a caller that comes to wait for it
}
