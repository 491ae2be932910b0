#!/usr/bin/env bash
# Assemble the offline kind node image from Debian packages and the binaries built by build-binaries.sh.
# Every stage is cached (docker images + a saved tar of the final node image under $CACHE).
# Environment (set by rollout-harness): RH_CACHE, RH_VERSIONS_FILE (default: versions.env next to this script),
# NODE_IMAGE (the tag to build); RH_STAGE=bases: the Debian bases only (they need no binary: made while those compile).
set -euo pipefail
: "${RH_CACHE:?set it to the cache directory (rollout-harness does; by hand e.g. RH_CACHE=~/.cache/rollout-harness)}"
. "${RH_VERSIONS_FILE:-$(dirname "$0")/versions.env}"
CACHE=$RH_CACHE/build-$KIND_VERSION-$K8S_VERSION
B=$CACHE/bin
NODE_IMAGE=${NODE_IMAGE:-rollout-harness/kind-node:$K8S_VERSION-offline}
NODE_TAR=$CACHE/node-image.tar
step() { echo "[node-image $(date +%T)] $*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if have_image "$NODE_IMAGE"; then step "$NODE_IMAGE present"; exit 0; fi
if [ -f "$NODE_TAR" ]; then step "loading cached $NODE_TAR"; docker load -i "$NODE_TAR" >/dev/null; exit 0; fi

for t in debootstrap jq gcc; do command -v $t >/dev/null || { echo "error: $t is needed for the offline build (apt-get install $t)" >&2; exit 3; }; done
MIRROR=${RH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KSRC=$(GOFLAGS=-modcacherw GOTOOLCHAIN=local go mod download -json sigs.k8s.io/kind@"$KIND_VERSION" | jq -r .Dir)
mkdir -p "$CACHE/img" "$CACHE/ctx"

# 1. node base: bookworm + systemd + containerd/runc/CNI from Debian + kind's base files
if ! have_image rollout-harness/kind-base:bookworm; then
  R=$CACHE/rootfs; rm -rf "$R"
  step "debootstrap node rootfs"
  debootstrap --variant=minbase --include=systemd,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,fuse-overlayfs,e2fsprogs,bash,ca-certificates,curl,jq,procps,containerd,runc,containernetworking-plugins,socat \
    "$DEBIAN_SUITE" "$R" "$MIRROR" > "$CACHE/debootstrap-node.log" 2>&1 || { tail -20 "$CACHE/debootstrap-node.log" >&2; exit 1; }
  F=$KSRC/images/base/files
  mkdir -p "$R/kind/bin" "$R/etc/systemd/system/kubelet.service.d" "$R/etc/containerd" "$R/opt/cni" "$R/etc/sysctl.d" "$R/etc/default"
  install -m755 "$F"/usr/local/bin/* "$R/usr/local/bin/"
  install -m755 "$F"/kind/bin/* "$R/kind/bin/"
  install -m644 "$F/etc/crictl.yaml" "$R/etc/"; install -m644 "$F/etc/default/kubelet" "$R/etc/default/"
  install -m644 "$F"/etc/sysctl.d/* "$R/etc/sysctl.d/"
  install -m644 "$F/etc/containerd/config.toml" "$R/etc/containerd/"
  install -m644 "$F"/etc/systemd/system/*.service "$F"/etc/systemd/system/*.slice "$R/etc/systemd/system/"
  install -m644 "$F"/etc/systemd/system/kubelet.service.d/* "$R/etc/systemd/system/kubelet.service.d/"
  sed -i -e 's/restrict_oom_score_adj = false/restrict_oom_score_adj = true/' "$R/etc/containerd/config.toml"
  grep -q 'restrict_oom_score_adj = true' "$R/etc/containerd/config.toml"
  mkdir -p "$R/etc/systemd/system/containerd.service.d"
  printf '[Service]\nLimitNOFILE=1048576\n' > "$R/etc/systemd/system/containerd.service.d/10-limits.conf"
  ln -sf /usr/bin/containerd "$R/usr/local/bin/containerd"; rm -rf "$R/opt/cni/bin"; ln -sfn /usr/lib/cni "$R/opt/cni/bin"
  chroot "$R" sh -c 'ctr oci spec | jq ".hooks.createContainer[.hooks.createContainer|length] |= . + {\"path\": \"/kind/bin/mount-product-files.sh\"}" | jq "del(.process.rlimits)" > /etc/containerd/cri-base.json
   find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
   rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* /lib/systemd/system/local-fs.target.wants/* \
     /lib/systemd/system/sockets.target.wants/*udev* /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
   echo ReadKMsg=no >> /etc/systemd/journald.conf; ln -sf /usr/lib/systemd/systemd /sbin/init
   systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1; systemctl mask systemd-binfmt.service >/dev/null 2>&1
   mkdir -p /etc/kubernetes/manifests; apt-get clean; rm -rf /var/lib/apt/lists/*'
  step "import node base"
  tar -C "$R" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . | docker import - rollout-harness/kind-rootfs:bookworm >/dev/null
  printf 'FROM rollout-harness/kind-rootfs:bookworm\nENV container=docker\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint","/sbin/init"]\n' \
    | docker build -q -t rollout-harness/kind-base:bookworm - >/dev/null
  rm -rf "$R"
fi

# 2. small base with iptables for kube-proxy and kindnetd (nft backend, as on Debian bookworm hosts)
if ! have_image rollout-harness/netbase:bookworm; then
  N=$CACHE/netroot; rm -rf "$N"
  step "debootstrap netbase"
  debootstrap --variant=minbase --include=iptables,nftables,conntrack,ca-certificates "$DEBIAN_SUITE" "$N" "$MIRROR" > "$CACHE/debootstrap-net.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap-net.log" >&2; exit 1; }
  chroot "$N" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man /usr/share/locale'
  tar -C "$N" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . | docker import - rollout-harness/netbase:bookworm >/dev/null
  rm -rf "$N"
fi

[ "${RH_STAGE:-}" = bases ] && { step "bases ready"; exit 0; }
for b in kind kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd pause; do
  [ -x "$B/$b" ] || { echo "error: $B/$b missing; run build-binaries.sh first" >&2; exit 3; }; done
PAUSE_TAG=$(awk -F: '/\/pause:/{print $2}' "$CACHE/images.txt")
ETCD_TAG=$(awk -F: '/\/etcd:/{print $2}' "$CACHE/images.txt")

# 3. component images, named exactly as kubeadm and kind expect
mkimg() { # repo tag binary base
  local c=$CACHE/ctx/$3; mkdir -p "$c"; cp "$B/$3" "$c/"
  printf 'FROM %s\nENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nCOPY %s /usr/local/bin/%s\nENTRYPOINT ["/usr/local/bin/%s"]\n' "$4" "$3" "$3" "$3" > "$c/Dockerfile"
  docker build -q -t "$1:$2" "$c" >/dev/null && docker save "$1:$2" -o "$CACHE/img/$3.tar"
}
step "component images"
for c in kube-apiserver kube-controller-manager kube-scheduler; do mkimg registry.k8s.io/$c "$K8S_VERSION" $c scratch; done
mkimg registry.k8s.io/kube-proxy "$K8S_VERSION" kube-proxy rollout-harness/netbase:bookworm
mkimg registry.k8s.io/etcd "$ETCD_TAG" etcd scratch
mkdir -p "$CACHE/ctx/pause"; cp "$B/pause" "$CACHE/ctx/pause/"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' > "$CACHE/ctx/pause/Dockerfile"
docker build -q -t "registry.k8s.io/pause:$PAUSE_TAG" "$CACHE/ctx/pause" >/dev/null
docker save "registry.k8s.io/pause:$PAUSE_TAG" -o "$CACHE/img/pause.tar"

# 4. node image: what `kind build node-image` does, without pulling anything
step "assemble $NODE_IMAGE"
CID=$(docker run -d --entrypoint=sleep --security-opt seccomp=unconfined --privileged rollout-harness/kind-base:bookworm infinity)
trap 'docker rm -f -v "$CID" >/dev/null 2>&1 || true' EXIT
for b in kubeadm kubelet kubectl; do docker cp "$B/$b" "$CID:/usr/bin/$b"; done
[ ! -x "$B/crictl" ] || docker cp "$B/crictl" "$CID:/usr/local/bin/crictl"
docker exec "$CID" sed -i "s#sandbox_image = .*#sandbox_image = \"registry.k8s.io/pause:$PAUSE_TAG\"#" /etc/containerd/config.toml
docker exec "$CID" sh -c 'chown root:root /usr/bin/kube*; chmod 755 /usr/bin/kube*; mkdir -p /kind/manifests'
printf %s "$K8S_VERSION" | docker exec -i "$CID" sh -c 'cat > /kind/version'
docker exec "$CID" bash -c 'nohup containerd >/tmp/containerd.log 2>&1 & for i in 1 2 3 4 5 6; do [ -S /run/containerd/containerd.sock ] && break; sleep $i; done; ctr version >/dev/null'
for t in "$CACHE"/img/*.tar; do docker exec -i "$CID" ctr -n k8s.io images import --all-platforms --no-unpack --digests - < "$t" >/dev/null; done
docker exec "$CID" sh -c 'for i in $(ctr -n k8s.io images ls -q); do ctr -n k8s.io images label $i io.cri-containerd.pinned=pinned >/dev/null; done; ctr -n k8s.io images ls -q; pkill containerd; sleep 2' >&2
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' "$CID" "$NODE_IMAGE" >/dev/null
step "saving $NODE_TAR"
docker save "$NODE_IMAGE" -o "$NODE_TAR.tmp" && mv "$NODE_TAR.tmp" "$NODE_TAR"
step "done: $NODE_IMAGE ($(du -h "$NODE_TAR" | cut -f1))"
