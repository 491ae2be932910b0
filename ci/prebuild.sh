#!/usr/bin/env bash
# Start the Go builds that only some of the work needs (crictl, which only spares a warm `up` its image loads, and
# `up` leaves to this one when it runs; Traefik for `--via ingress`, the test registry for tests/test_pull.py; `up`
# builds CoreDNS and metrics-server itself, beside the Kubernetes binaries) in the background, at the lowest CPU and I/O priority, so that a cold machine
# compiles them while it waits on other things (the node image's downloads, the cluster's rollouts) instead of in
# line. Binaries only (RH_BINARY_ONLY: docker may not be up yet). Each build holds its binary's lock
# (ci/build-go-module.sh, ci/build-registry.sh): the foreground build that needs it waits for it, then finds it built;
# a failure here is only logged, and the foreground build tries again. Cached binaries: done at once.
# Usage: prebuild.sh PIDFILE   (the PIDs started, for the caller to stop whatever still runs when it ends)
# Logs: $RH_CACHE/logs/prebuild-NAME.log.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
# GOGC: as `up`'s builds (harness/provision.py: BUILD_GOGC)
export RH_CACHE=${RH_CACHE:-$HOME/.cache/rollout-harness} RH_BINARY_ONLY=1 GOGC=${GOGC:-400}
mkdir -p "$RH_CACHE/logs"
: > "$1"
# Each build runs in a session of its own (setsid: the caller stops it with its process group). With the kernel's
# autogroup scheduling (sched_autogroup_enabled, on in Debian's kernel) a new session is a new scheduling group that
# gets as much CPU as the caller's whatever its processes' nice value: the group itself is niced to 19 first
# (/proc/self/autogroup), or three builds would take three quarters of the cores from the node image's compile.
for name in crictl traefik registry; do
  # shellcheck disable=SC2016  # expanded by the inner shell
  setsid bash -c '{ echo 19 > /proc/self/autogroup; } 2>/dev/null; exec nice -n 19 ionice -c 3 bash "$0"' "build-$name.sh" \
    > "$RH_CACHE/logs/prebuild-$name.log" 2>&1 < /dev/null &
  echo $! >> "$1"
done
