#!/bin/bash
# run.sh: the kernel NBD suite. Boots a small qemu VM (Debian's cloud kernel,
# a busybox initramfs) and runs, inside it, the guest tests in test/vm/guest
# against the real nbd.ko: attach over netlink with sockets served by our own
# NBD server, ext4/xfs round trips, online resize, and the server-restart
# test (kill -9 of "csi-gorbd nbd map" under a write load, then
# "csi-gorbd nbd recover").
#
# The host kernel needs no nbd module. KVM is used only when it is real
# VT-x/AMD-V (not kvm_pvm); otherwise TCG (2-3x slower, still ~1 min).
#
# Usage: bash test/vm/run.sh            (root, Debian bookworm x86_64)
# Env:   VM_RUN=regexp        only the guest tests matching (go test -run)
#        VM_TIMEOUT=1500      overall qemu timeout, seconds (the guest's
#                             go test -timeout is 60s less)
#        VM_MEM=512 VM_SMP=2  guest size
#        VM_NET=0             1: add a virtio NIC (qemu user net; the host's
#                             loopback is 10.0.2.2 in the guest) for tests
#                             that reach host services (RBD variant)
#        VM_ACCEL=auto|tcg|kvm
#        VM_CACHE=/var/tmp/gorbd/vm   kernel + build cache
#        VM_CEPH_CLUSTER=pacific  with VM_NET=1: the cluster under
#                             $GORBD_CLUSTERS whose mon address, client.admin
#                             key, pool and mon/OSD port range go into the
#                             guest's env (GORBD_VM_CEPH_*, see
#                             guest/hostceph_test.go); the guest forwards those
#                             ports from its 127.0.0.1 to the host
#        VM_ENV_FILE=file     extra KEY=VALUE lines for the guest tests
#                             (appended to /etc/gorbd-vm.env)
#        VM_BENCH=1           also pack fio (bench/vm-encryption.sh)
#        SKIP_DEPS=1          do not run test/deps.sh
# Exit status 0 only when the guest printed "VM-TEST-RESULT: PASS".
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/test/vm
CACHE=${VM_CACHE:-/var/tmp/gorbd/vm}
TIMEOUT=${VM_TIMEOUT:-1500}
MEM=${VM_MEM:-512}
SMP=${VM_SMP:-2}
NET=${VM_NET:-0}
ACCEL=${VM_ACCEL:-auto}
export PATH=/usr/local/go/bin:$PATH:/usr/sbin:/sbin
export CGO_ENABLED=0

ts() { date +%s.%N; }
el() { awk "BEGIN{printf \"%.1f\", $(ts) - $1}"; }
say() { echo "[vm $(date +%T)] $*"; }
T_START=$(ts)
mkdir -p "$CACHE"

# ---------------------------------------------------------------- packages
[ "${SKIP_DEPS:-0}" = 1 ] || bash "$ROOT/test/deps.sh" >/dev/null

# ---------------------------------------------------------------- kernel
T=$(ts)
# shellcheck source=kernel.sh
. "$HERE/kernel.sh"
say "kernel $KVER ready in $(el "$T")s"

# ---------------------------------------------------------------- binaries
T=$(ts)
BUILD=$CACHE/build
mkdir -p "$BUILD"
chmod 700 "$BUILD" # the guest env and the initramfs hold a cephx key
(cd "$ROOT" && go build -trimpath -ldflags='-s -w' -o "$BUILD/csi-gorbd" ./cmd/csi-gorbd)
(cd "$ROOT" && go test -c -trimpath -ldflags='-s -w' -o "$BUILD/guest.test" ./test/vm/guest)
say "static csi-gorbd + guest.test built in $(el "$T")s"

# ---------------------------------------------------------------- guest env
# KEY=VALUE lines init.sh exports to the guest tests. With VM_NET=1, the
# host cluster: it advertises 127.0.0.1 addresses, so the guest forwards
# the mon and OSD ports (ceph.conf's "ms bind port min/max" range plus the
# mon ports) from its own loopback to the host (10.0.2.2). The file holds
# the cluster's admin key: it and the initramfs are mode 0600.
guest_env() {
	local cl conf ports lo hi key
	for v in GORBD_REQUIRE_CLUSTERS CI; do
		[ -n "${!v:-}" ] && echo "$v='${!v}'"
	done
	if [ "$NET" = 1 ]; then
		cl=${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/${VM_CEPH_CLUSTER:-pacific}
		if [ -f "$cl/cluster.env" ]; then
			(
				set +u
				. "$cl/cluster.env"
				conf=${CEPH_CONF:-$cl/ceph.conf}
				key=$CEPH_ADMIN_KEY
				[ -n "$key" ] || key=$(awk '/^\[client.admin\]/{a=1;next} /^\[/{a=0} a&&$1=="key"{print $3; exit}' "$CEPH_KEYRING")
				lo=$(awk -F' *= *' '$1 ~ /^[ \t]*ms bind port min$/{print $2}' "$conf")
				hi=$(awk -F' *= *' '$1 ~ /^[ \t]*ms bind port max$/{print $2}' "$conf")
				ports=$(echo "$CEPH_MON_HOST" | grep -oE '[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+:[0-9]+' | cut -d: -f2 | paste -sd,)
				[ -n "$lo" ] && [ -n "$hi" ] && ports="$ports,$lo-$hi"
				echo "GORBD_VM_HOST=10.0.2.2"
				echo "GORBD_VM_CEPH_CLUSTER='$CEPH_NAME'"
				echo "GORBD_VM_CEPH_MON='$CEPH_MON_HOST'"
				echo "GORBD_VM_CEPH_USER='client.admin'"
				echo "GORBD_VM_CEPH_KEY='$key'"
				echo "GORBD_VM_CEPH_POOL='${CEPH_POOL:-rbd}'"
				echo "GORBD_VM_CEPH_FSID='$CEPH_FSID'"
				echo "GORBD_VM_CEPH_PORTS='$ports'"
			)
		else
			echo "[vm] no cluster at $cl: tests that need the host's Ceph skip (or fail in CI)" >&2
		fi
	fi
	if [ -n "${VM_ENV_FILE:-}" ]; then cat "$VM_ENV_FILE"; fi
}

# ---------------------------------------------------------------- initramfs
T=$(ts)
R=$BUILD/root
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib/modules,lib64,etc,proc,sys,dev,tmp,mnt,run,var}
cp /bin/busybox "$R/bin/busybox"
cp "$HERE/init.sh" "$R/init"
chmod 755 "$R/init"
cp "$BUILD/csi-gorbd" "$BUILD/guest.test" "$R/bin/"
copy_dyn() { # a dynamic binary and the libraries ldd lists
	cp -L "$1" "$R/sbin/$(basename "$1")"
	ldd "$1" | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$R$(dirname "$lib")"
		[ -e "$R$lib" ] || cp -L "$lib" "$R$lib"
	done
}
for b in /sbin/mke2fs /sbin/e2fsck /sbin/resize2fs /sbin/mkfs.xfs /usr/sbin/xfs_growfs /sbin/xfs_repair \
	/sbin/blkid /sbin/fsck /sbin/blockdev /bin/mount /bin/umount \
	/sbin/cryptsetup /sbin/dmsetup; do # util-linux: k8s.io/mount-utils (CSI node tests); cryptsetup: dm-crypt interop
	copy_dyn "$(readlink -f "$b")"
done
# cryptsetup dlopens libgcc_s for pthread_exit (ldd does not list it)
cp -L "$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/{print $NF; exit}')" "$R/lib/x86_64-linux-gnu/"
if [ "${VM_BENCH:-0}" = 1 ]; then # fio and its libraries (~20 MB) only for the bench
	copy_dyn "$(readlink -f /usr/bin/fio)"
fi
ln -sf mke2fs "$R/sbin/mkfs.ext4"
ln -sf e2fsck "$R/sbin/fsck.ext4"
guest_env > "$R/etc/gorbd-vm.env"
chmod 600 "$R/etc/gorbd-vm.env"
# modules in dependency order; -C /dev/null ignores the host's modprobe.d
# dm_crypt + xts + aesni_intel (+ algif_skcipher, cryptsetup's keyslot
# cipher): cryptsetup and dm-crypt as the peer of our LUKS; aesni_intel
# fails to load on a CPU without AES-NI, and the generic AES serves then.
MODS="nbd xfs dm_crypt xts aesni_intel algif_skcipher"
# rbd (krbd, with libceph): the takeover test maps a volume as ceph-csi's
# node plugin did before csi-gorbd unmaps it.
[ "$NET" = 1 ] && MODS="virtio_pci virtio_net $MODS rbd"
: > "$R/etc/modules.order"
for m in $MODS; do
	modprobe -C /dev/null -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
	rel=${ko#*/lib/modules/$KVER/}
	mkdir -p "$R/lib/modules/$(dirname "$rel")"
	cp "$ko" "$R/lib/modules/$rel"
	args=""
	[ "$(basename "$rel")" = nbd.ko ] && args="nbds_max=8"
	echo "$rel $args" >> "$R/etc/modules.order"
done
install -m 600 /dev/null "$BUILD/initramfs.cpio"
(cd "$R" && find . | cpio -o -H newc --quiet) > "$BUILD/initramfs.cpio"
say "initramfs $(du -h "$BUILD/initramfs.cpio" | cut -f1) built in $(el "$T")s"

# ---------------------------------------------------------------- boot
if [ "$ACCEL" = auto ]; then
	# kvm_pvm (nested PVM hosts) runs stock kernels far slower than TCG and
	# fails on emulation; use KVM only with kvm_intel/kvm_amd.
	ACCEL=tcg
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
		ACCEL=kvm
	fi
fi
case $ACCEL in
kvm) ACCELOPT="-accel kvm -cpu host" ;;
*) ACCELOPT="-accel tcg,thread=multi,tb-size=128 -cpu max" ;; # -cpu max: crc32c-intel needs SSE4.2
esac
NETOPT=""
[ "$NET" = 1 ] && NETOPT="-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile="
LOG=$BUILD/serial.log
say "booting qemu ($ACCEL, ${MEM}M, $SMP vCPU, net=$NET, timeout ${TIMEOUT}s)"
T=$(ts)
set +e
# -M pc, not microvm: microvm has no HPET/PM timer and hangs calibrating the
# TSC when the host is busy.
TIMEFORMAT='%U %S'
rm -f "$LOG"
touch "$LOG"
{ time timeout "$TIMEOUT" qemu-system-x86_64 $ACCELOPT -M pc -m "$MEM" -smp "$SMP" \
	-nodefaults -no-user-config -nographic -serial stdio -no-reboot \
	-kernel "$KDIR/boot/vmlinuz-$KVER" -initrd "$BUILD/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 reboot=t quiet loglevel=3 gorbd.run=${VM_RUN:-.} gorbd.net=$NET gorbd.timeout=$((TIMEOUT - 60))" \
	$NETOPT < /dev/null >> "$LOG" 2>&1; } 2> "$BUILD/qemu.cpu" &
QPID=$!
tail -n +1 -f "$LOG" --pid=$QPID 2>/dev/null | sed -u 's/\x1b[[(][0-9;?]*[a-zA-Z]//g; s/\x1bc//g'
wait $QPID
QRC=$?
set -e
read -r CPU_U CPU_S < "$BUILD/qemu.cpu" || true
say "qemu ran $(el "$T")s wall, ${CPU_U:-?}s user + ${CPU_S:-?}s sys CPU (load average: $(cut -d' ' -f1-3 /proc/loadavg)); total $(el "$T_START")s"
grep -E -- '^--- (PASS|FAIL|SKIP)' "$LOG" | sed 's/^/[vm] /' || true
echo "vm: $(grep -c -- '^--- PASS' "$LOG") passed, $(grep -c -- '^--- FAIL' "$LOG") failed"
if [ $QRC = 124 ]; then
	say "FAIL: timeout after ${TIMEOUT}s"
	exit 1
fi
if grep -q '^VM-TEST-RESULT: PASS' "$LOG"; then
	exit 0
fi
say "FAIL (serial log: $LOG)"
exit 1
