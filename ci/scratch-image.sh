#!/usr/bin/env bash
# Package one static binary as a distroless-style image: the binary at /NAME, /etc/passwd and /etc/group with root,
# nobody and nonroot (65532), /etc/nsswitch.conf, a world-writable /tmp; nothing else (no shell, no CA bundle).
# Usage: scratch-image.sh BINARY NAME IMAGE LABEL VALUE. Rebuilds only when IMAGE's label LABEL is not VALUE.
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: scratch-image.sh BINARY NAME IMAGE LABEL VALUE" >&2; exit 2; }
BIN=$1 NAME=$2 IMAGE=$3 LABEL=$4 VALUE=$5
[ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null)" = "$VALUE" ] && exit 0
C=$(mktemp -d); trap 'rm -rf "$C"' EXIT
mkdir -p "$C/rootfs/etc" "$C/rootfs/tmp"; chmod 1777 "$C/rootfs/tmp"
cp "$BIN" "$C/rootfs/$NAME"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$C/rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$C/rootfs/etc/group"
echo 'hosts: files dns' > "$C/rootfs/etc/nsswitch.conf"
printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["/%s"]\n' "$NAME" > "$C/Dockerfile"
echo "[image $(date +%T)] $IMAGE" >&2
docker build -q --label "$LABEL=$VALUE" -t "$IMAGE" "$C" >/dev/null
