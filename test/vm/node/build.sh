#!/bin/bash
# build.sh: the Kubernetes node VM that test/e2e boots. Prints, on its last
# stdout line, a directory holding
#   vmlinuz      Debian's cloud kernel (the one test/vm/run.sh uses)
#   initrd.cpio  stage 1: busybox + the virtio block modules, mounts the disk
#   node.img     the node's root disk (raw ext4, booted with snapshot=on so
#                every boot starts clean): Debian bookworm from debootstrap
#                with containerd, runc, the CNI plugins, iptables and the
#                filesystem tools, the kernel's modules, the kubelet, the
#                guest agent, init.sh as /sbin/gorbd-node-init, and the
#                container images given as IMAGES imported into containerd
#
#   images.list  the image references imported into the disk's containerd
#
#   bash test/vm/node/build.sh --rootfs     (only the first cache level: CI
#                                            starts it early, in the background)
#   bash test/vm/node/build.sh BINS_DIR [IMAGES...]
#     BINS_DIR    test/e2e/build-bins.sh's output (the kubelet comes from it)
#     IMAGES      docker-save tarballs, or directories of them, to import
#                 into containerd at build time: every image the node runs
#                 (pause, busybox, agnhost, the csi-gorbd plugin, ...).
#                 Importing on the host takes seconds; in the TCG guest the
#                 csi-gorbd image alone took a minute of every boot.
#
# Cached under $VM_CACHE/node (default /var/tmp/gorbd/vm/node) in two levels:
# rootfs-KEY (debootstrap + packages + kernel modules; KEY hashes the package
# list, the kernel version and this script) and img-KEY (KEY also hashes the
# kubelet, the agent, the files in this directory and the image tarballs).
# An unchanged input set returns at once; a changed one rebuilds only what it
# must. Older img-* directories are removed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$ROOT/test/vm/node
CACHE=${VM_CACHE:-/var/tmp/gorbd/vm}
NC=$CACHE/node
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin
[ $# -ge 1 ] || { echo "usage: $0 --rootfs | BINS_DIR [IMAGES...]" >&2; exit 2; }
BINS=$1
shift
ROOTFS_ONLY=0
[ "$BINS" = --rootfs ] && ROOTFS_ONLY=1
SUITE=bookworm
DISK_SIZE=8G
# What a kubelet node needs from Debian (util-linux and mount are in minbase).
PKGS=(containerd runc containernetworking-plugins iptables e2fsprogs xfsprogs kmod iproute2 procps ca-certificates)

T0=$(date +%s.%N)
log() { printf '[node-image %6.1fs] %s\n' "$(awk "BEGIN{print $(date +%s.%N) - $T0}")" "$*" >&2; }
sha() { sha256sum | cut -c1-16; }
[ $ROOTFS_ONLY = 1 ] || [ -x "$BINS/kubelet" ] || { echo "$BINS/kubelet missing (run test/e2e/build-bins.sh)" >&2; exit 1; }
mkdir -p "$NC"
exec 9> "$NC/build.lock"
flock 9

# shellcheck source=../kernel.sh
. "$ROOT/test/vm/kernel.sh" >&2

# ---------------------------------------------------------------- rootfs
RKEY=$(printf '%s\n' "$SUITE" "$KVER" "${PKGS[@]}" "$(sed -n '/^# ---- rootfs begin/,/^# ---- rootfs end/p' "$0")" | sha)
RFS=$NC/rootfs-$RKEY
# ---- rootfs begin
mirror() {
	local m=""
	if compgen -G "/etc/apt/sources.list.d/*.sources" > /dev/null; then
		m=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources | head -n1)
	fi
	if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
		m=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}
if [ ! -f "$RFS/.gorbd-ready" ]; then
	log "debootstrap $SUITE with ${PKGS[*]}"
	rm -rf --one-file-system "$RFS" "$RFS.tmp"
	if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${PKGS[*]}")" "$SUITE" "$RFS.tmp" "${MIRROR:-$(mirror)}" > "$NC/debootstrap.log" 2>&1; then
		tail -n 30 "$NC/debootstrap.log" >&2
		echo "debootstrap failed (log $NC/debootstrap.log)" >&2
		exit 1
	fi
	# the kernel's modules, for modprobe in the guest (and in the plugin's
	# container through the chart's /lib/modules hostPath)
	mkdir -p "$RFS.tmp/lib/modules"
	cp -a "$KDIR/lib/modules/$KVER" "$RFS.tmp/lib/modules/"
	rm -rf "$RFS.tmp"/var/cache/apt/archives/*.deb "$RFS.tmp"/var/lib/apt/lists/* \
		"$RFS.tmp"/usr/share/doc "$RFS.tmp"/usr/share/man "$RFS.tmp"/usr/share/locale
	mv "$RFS.tmp" "$RFS"
	touch "$RFS/.gorbd-ready"
	log "rootfs $(du -sh "$RFS" | cut -f1) in $RFS"
fi
# ---- rootfs end
if [ $ROOTFS_ONLY = 1 ]; then
	log "rootfs ready: $RFS"
	echo "$RFS"
	exit 0
fi

# ---------------------------------------------------------------- inputs
AGENT=$NC/gorbd-node-agent.$$
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$AGENT" ./test/vm/node/agent)
trap 'rm -f "$AGENT"' EXIT
TARS=()
for a in "$@"; do
	if [ -d "$a" ]; then
		for t in "$a"/*.tar; do [ -f "$t" ] && TARS+=("$t"); done
	elif [ -f "$a" ]; then
		TARS+=("$a")
	else
		echo "no image tarball or directory: $a" >&2
		exit 1
	fi
done
KEY=$( {
	echo "$RKEY"
	cat "$HERE/build.sh" "$HERE/init.sh" "$HERE/initrd.sh" "$HERE/containerd.toml" "$HERE/cni.conflist" | sha256sum
	sha256sum < "$BINS/kubelet"
	sha256sum < "$AGENT"
	for t in "${TARS[@]}"; do echo "$(basename "$t") $(sha256sum < "$t")"; done
} | sha)
OUT=$NC/img-$KEY
if [ -f "$OUT/.gorbd-ready" ]; then
	log "cached: $OUT"
	echo "$OUT"
	exit 0
fi

# ---------------------------------------------------------------- disk
TMP=$OUT.tmp.$$
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -f "$AGENT"; rm -rf --one-file-system "$TMP"' EXIT
R=$TMP/root
cp -a "$RFS" "$R"
rm -f "$R/.gorbd-ready"
install -m 755 "$HERE/init.sh" "$R/sbin/gorbd-node-init"
install -m 755 "$BINS/kubelet" "$R/usr/local/bin/kubelet"
install -m 755 "$AGENT" "$R/usr/local/bin/gorbd-node-agent"
install -D -m 644 "$HERE/containerd.toml" "$R/etc/containerd/config.toml"
install -D -m 644 "$HERE/cni.conflist" "$R/etc/cni/net.d/10-gorbd-node.conflist"
mkdir -p "$R/var/lib/kubelet" "$R/etc/gorbd-node"

# Pre-import: the guest's own containerd, run in a chroot of the disk tree
# in a private mount namespace, unpacks the images into the tree's
# /var/lib/containerd (overlayfs snapshots, as the guest uses them).
if [ ${#TARS[@]} -gt 0 ]; then
	T=$(date +%s)
	mkdir -p "$TMP/images"
	i=0
	for t in "${TARS[@]}"; do # names may repeat across directories
		i=$((i + 1))
		cp "$t" "$TMP/images/$i-$(basename "$t")"
	done
	cat > "$TMP/import.toml" << 'TOML'
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
TOML
	unshare -m --propagation private bash -euc '
		R=$1 TMP=$2
		mount -t proc proc "$R/proc"
		mount -t tmpfs tmpfs "$R/run"
		mount -t tmpfs tmpfs "$R/tmp"
		mkdir -p "$R/mnt/images" "$R/mnt/cfg"
		mount --bind "$TMP/images" "$R/mnt/images"
		cp "$TMP/import.toml" "$R/tmp/import.toml"
		chroot "$R" containerd --config /tmp/import.toml > "$TMP/containerd.log" 2>&1 &
		CPID=$!
		for _ in $(seq 1 300); do [ -S "$R/run/containerd/containerd.sock" ] && break; sleep 0.1; done
		for t in "$R"/mnt/images/*.tar; do
			chroot "$R" ctr -n k8s.io images import "/mnt/images/$(basename "$t")" > /dev/null
		done
		chroot "$R" ctr -n k8s.io images ls -q | grep -v "^sha256:" > "$TMP/images.txt"
		kill $CPID
		wait $CPID || true
		umount "$R/mnt/images"
		rmdir "$R/mnt/images" "$R/mnt/cfg"
	' _ "$R" "$TMP" || { tail -n 20 "$TMP/containerd.log" >&2; echo "image import failed" >&2; exit 1; }
	log "imported ${#TARS[@]} images in $(( $(date +%s) - T ))s: $(tr '\n' ' ' < "$TMP/images.txt")"
	mv "$TMP/images.txt" "$TMP/images.list"
	rm -rf "$TMP/images" "$TMP/import.toml" "$TMP/containerd.log"
else
	: > "$TMP/images.list"
fi

mkfs.ext4 -q -F -L gorbd-node -d "$R" "$TMP/node.img" "$DISK_SIZE" >&2
log "node.img $(du -h "$TMP/node.img" | cut -f1) used of $DISK_SIZE"

# ---------------------------------------------------------------- initrd
I=$TMP/initrd
rm -rf "$I"
mkdir -p "$I"/{bin,dev,proc,sys,newroot,mods}
cp /bin/busybox "$I/bin/busybox"
install -m 755 "$HERE/initrd.sh" "$I/init"
: > "$I/mods/order"
for m in virtio_pci virtio_blk ext4; do
	modprobe -C /dev/null -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$I/mods/"
	basename "$ko" >> "$I/mods/order"
done
(cd "$I" && find . | cpio -o -H newc --quiet) > "$TMP/initrd.cpio"
cp "$KDIR/boot/vmlinuz-$KVER" "$TMP/vmlinuz"
echo "$KVER" > "$TMP/kernel.version"
rm -rf --one-file-system "$R" "$I"

rm -rf "$OUT"
mv "$TMP" "$OUT"
touch "$OUT/.gorbd-ready"
trap 'rm -f "$AGENT"' EXIT
# Keep only this image (each is a few hundred MB of a sparse 8G file).
for d in "$NC"/img-*; do
	[ "$d" = "$OUT" ] || rm -rf --one-file-system "$d"
done
log "built $OUT"
echo "$OUT"
