#!/bin/bash
# bench/nbd-memory.sh [CLUSTER]: memory (RSS) and OS threads of ONE
# "csi-gorbd nbd serve" process serving 1, 10 and 100 RBD images at once
# (one cluster connection, one export per image on one unix socket) versus
# one librbd client per image (qemu-nbd over rbd:, one process each, the
# shape of one rbd-nbd process per volume). Every image gets a little I/O
# first (qemu-io: 1 MiB written and read back with a pattern) so each
# client has really talked to the OSDs. Not a test: it prints a table.
#
#   bench/nbd-memory.sh pacific
# Env: COUNTS="1 10 100"  image counts for csi-gorbd
#      QEMU_COUNTS="1 10 100"  image counts for qemu-nbd (one process each)
#      IMG_SIZE=16M
# Needs the host-suite cluster (pacific: its librbd is the host's), fio is
# not used; qemu-utils (qemu-nbd, qemu-io) and qemu-block-extra (rbd
# driver). Images are named benchmem-<pid>-N and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
COUNTS=${COUNTS:-1 10 100}
QEMU_COUNTS=${QEMU_COUNTS:-1 10 100}
IMG_SIZE=${IMG_SIZE:-16M}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
bench_host_librbd qemu-nbd
bench_need qemu-nbd qemu-io rbd
export PATH=/usr/local/go/bin:$PATH
BIN=bin/csi-gorbd
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
RBD=(rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING")

MAX=1
for n in $COUNTS $QEMU_COUNTS; do [ "$n" -gt "$MAX" ] && MAX=$n; done
PREFIX=benchmem-$$
TMP=$(mktemp -d)
PIDS=()
stop_all() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
cleanup() {
	stop_all
	for i in $(seq 1 "$MAX"); do "${RBD[@]}" rm --no-progress "$POOL/$PREFIX-$i" >/dev/null 2>&1 || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT
echo "creating $MAX images of $IMG_SIZE in $POOL ..." >&2
for i in $(seq 1 "$MAX"); do "${RBD[@]}" create --size "$IMG_SIZE" "$POOL/$PREFIX-$i"; done

# io URI: 1 MiB written with a pattern and read back verified.
io() {
	local out
	out=$(qemu-io -f raw -c "write -P 0x5a 0 1M" -c "read -P 0x5a 0 1M" "$1" 2>&1) || { echo "qemu-io $1: $out" >&2; exit 1; }
	case $out in *"verification failed"*) echo "qemu-io $1: $out" >&2; exit 1 ;; esac
}
# mem PID...: "RSS_KiB THREADS PEAK_RSS_KiB" summed over the processes.
mem() {
	local rss=0 thr=0 hwm=0 p
	for p in "$@"; do
		rss=$((rss + $(awk '/^VmRSS:/{print $2}' "/proc/$p/status")))
		thr=$((thr + $(awk '/^Threads:/{print $2}' "/proc/$p/status")))
		hwm=$((hwm + $(awk '/^VmHWM:/{print $2}' "/proc/$p/status")))
	done
	echo "$rss $thr $hwm"
}

ROWS=()
for n in $COUNTS; do
	specs=()
	for i in $(seq 1 "$n"); do specs+=("$POOL/$PREFIX-$i"); done
	sock=$TMP/ours.sock
	"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve --listen "unix:$sock" "${specs[@]}" 2>"$TMP/ours.log" &
	PIDS=($!)
	wait_sock "$sock" 300
	for s in "${specs[@]}"; do io "nbd+unix:///$s?socket=$sock"; done
	sleep 1 # let the last replies and connection teardown settle
	read -r rss thr hwm < <(mem "${PIDS[@]}")
	ROWS+=("csi-gorbd $n 1 $rss $thr $hwm")
	echo "csi-gorbd: $n images: RSS $((rss / 1024)) MiB, $thr threads" >&2
	stop_all
done
for n in $QEMU_COUNTS; do
	for i in $(seq 1 "$n"); do
		qemu-nbd -f raw --cache=none --persistent --socket="$TMP/q$i.sock" \
			"rbd:$POOL/$PREFIX-$i:conf=$CEPH_CONF:id=admin:keyring=$CEPH_KEYRING" 2>"$TMP/q$i.log" &
		PIDS+=($!)
	done
	for i in $(seq 1 "$n"); do
		wait_sock "$TMP/q$i.sock" 300
		io "nbd+unix:///?socket=$TMP/q$i.sock"
	done
	sleep 1
	read -r rss thr hwm < <(mem "${PIDS[@]}")
	ROWS+=("qemu-nbd+librbd $n $n $rss $thr $hwm")
	echo "qemu-nbd: $n images: RSS $((rss / 1024)) MiB, $thr threads" >&2
	stop_all
done

echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")), pool $POOL, $IMG_SIZE images, 1 MiB write+read each"
printf '%s\n' "${ROWS[@]}" | awk '
BEGIN { printf "%-16s %6s %9s %8s %10s %9s %8s %13s\n", "server", "images", "processes", "RSS MiB", "MiB/image", "peak MiB", "threads", "threads/image" }
{ printf "%-16s %6d %9d %8.1f %10.2f %9.1f %8d %13.2f\n", $1, $2, $3, $4/1024, $4/1024/$2, $6/1024, $5, $5/$2 }
END { print "RSS and threads after every image had its I/O (clients disconnected, servers still serving); peak = sum of VmHWM" }'
