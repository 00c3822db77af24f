#!/bin/bash
# bench/nbd.sh [CLUSTER] [SECONDS]: the same RBD image read and written by
# fio three ways, one after the other:
#   ours     fio's nbd engine → csi-gorbd nbd serve POOL/IMG (pure Go)
#   qemu-nbd fio's nbd engine → qemu-nbd serving rbd:POOL/IMG (librbd, cache=none)
#   librbd   fio's rbd engine (librbd in process, no NBD)
# for 4 KiB random write/read at QD16 and 1 MiB sequential write/read at
# QD8, SECONDS (default 10) each, and prints a table with the ratios
# ours/qemu-nbd and ours/librbd, then the same jobs against
# "nbd serve --memory" (the NBD layer's own ceiling, no Ceph).
# Not a test: numbers depend on the machine.
# Needs a cluster whose librbd matches the host's (the host suite, pacific)
# and qemu-block-extra (qemu's rbd driver). The image (IMG_SIZE, default
# 256M) is removed at the end.
#   bench/nbd.sh pacific 10
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
SECS=${2:-10}
IMG_SIZE=${IMG_SIZE:-256M}
ENV=${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/$CLUSTER/cluster.env
[ -f "$ENV" ] || { echo "no $ENV: start the cluster first (test/cluster/start.sh $CLUSTER)" >&2; exit 1; }
CEPH_CONF=$(sed -n 's/^CEPH_CONF=//p' "$ENV")
CEPH_KEYRING=$(sed -n 's/^CEPH_KEYRING=//p' "$ENV")
POOL=${POOL:-$(sed -n 's/^CEPH_POOL=//p' "$ENV")}
CLI=$(sed -n 's/^CEPH_CLI=//p' "$ENV" | tr -d '"')
[ -z "$CLI" ] || { echo "$CLUSTER runs its CLI in a chroot; qemu-nbd and fio's rbd engine need the host's librbd to match (use pacific)" >&2; exit 1; }
for t in fio qemu-nbd rbd; do command -v "$t" >/dev/null || { echo "missing $t (test/deps.sh)" >&2; exit 1; }; done
BIN=bin/csi-gorbd
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd

IMG=benchnbd-$$
TMP=$(mktemp -d)
SRV=
stop_server() {
	if [ -n "$SRV" ]; then
		kill "$SRV" 2>/dev/null || true
		wait "$SRV" 2>/dev/null || true
		SRV=
	fi
}
cleanup() {
	stop_server
	rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" rm --no-progress "$POOL/$IMG" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT
rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" create --size "$IMG_SIZE" "$POOL/$IMG"

wait_sock() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done
	echo "server did not come up on $1" >&2
	exit 1
}

# The jobs, in this order: the sequential write first fills the image so
# that the reads hit allocated objects for every tool.
JOBS=("seqwrite:--rw=write --bs=1M --iodepth=8" "randwrite:--rw=randwrite --bs=4k --iodepth=16"
	"randread:--rw=randread --bs=4k --iodepth=16" "seqread:--rw=read --bs=1M --iodepth=8")

# ticks PID...: CPU time (user + system, clock ticks) used so far by the
# processes (0 for one that is gone).
ticks() {
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
OSDS=()
CEPH_DIR=$(sed -n 's/^CEPH_DIR=//p' "$ENV")
for f in "$CEPH_DIR"/run/osd.*.pid; do [ -f "$f" ] && OSDS+=("$(cat "$f")"); done
HZ=$(getconf CLK_TCK)

# runjobs TOOL ENGINE-ARGS...: every job, terse v3 lines into $TMP/TOOL-JOB
# and the CPU ticks the server ($SRV, if any) and the OSDs used in it into
# $TMP/TOOL-JOB.cpu.
runjobs() {
	local tool=$1 s0 o0
	shift
	for j in "${JOBS[@]}"; do
		local name=${j%%:*} args=${j#*:}
		echo "$tool: $name ($args)" >&2
		s0=$(ticks ${SRV:+"$SRV"})
		o0=$(ticks "${OSDS[@]}")
		# shellcheck disable=SC2086 # args is a word list
		fio --name="$name" "$@" $args --time_based --runtime="$SECS" --ramp_time=1 \
			--numjobs=1 --output-format=terse --terse-version=3 >"$TMP/$tool-$name.out" 2>&1 || true
		echo "$(($(ticks ${SRV:+"$SRV"}) - s0)) $(($(ticks "${OSDS[@]}") - o0))" >"$TMP/$tool-$name.cpu"
		# fio may exit 0 when the engine fails to connect: want one
		# result line with error 0.
		awk -F';' '/^3;/ && $5 == 0' "$TMP/$tool-$name.out" | tail -1 >"$TMP/$tool-$name"
		[ -s "$TMP/$tool-$name" ] || { cat "$TMP/$tool-$name.out" >&2; exit 1; }
	done
}

# ours
"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve "$POOL/$IMG" --listen "unix:$TMP/ours.sock" 2>"$TMP/ours.log" &
SRV=$!
wait_sock "$TMP/ours.sock"
runjobs ours --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/ours.sock"
stop_server

# qemu-nbd through librbd, without librbd's cache (like ours)
qemu-nbd -f raw --cache=none --persistent --socket="$TMP/qemu.sock" \
	"rbd:$POOL/$IMG:conf=$CEPH_CONF:id=admin:keyring=$CEPH_KEYRING" 2>"$TMP/qemu.log" &
SRV=$!
wait_sock "$TMP/qemu.sock"
runjobs qemu --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/qemu.sock"
stop_server

# the NBD server alone: the same jobs against an in-memory export, the
# ceiling the NBD layer (fio's engine, the socket, our server) allows
"$BIN" nbd serve --memory "$IMG_SIZE" --listen "unix:$TMP/mem.sock" 2>"$TMP/mem.log" &
SRV=$!
wait_sock "$TMP/mem.sock"
runjobs mem --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/mem.sock"
stop_server

# fio's rbd engine: librbd in the fio process
SRV=
export CEPH_CONF CEPH_ARGS="--keyring $CEPH_KEYRING"
runjobs librbd --ioengine=rbd --clientname=admin --pool="$POOL" --rbdname="$IMG"

# terse v3: read bw KiB/s $7, iops $8, lat mean µs $40; write $48, $49, $81.
vals() {
	awk -F';' -v rw="$2" '{ if (rw == "r") print $7/1024, $8, $40; else print $48/1024, $49, $81 }' "$1"
}
echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")), pool $POOL, image $IMG_SIZE, ${SECS}s per run; MB = MiB, lat = mean µs"
{
	for j in "${JOBS[@]}"; do
		name=${j%%:*}
		rw=w
		case $name in *read) rw=r ;; esac
		echo "$name $(vals "$TMP/ours-$name" $rw) $(vals "$TMP/qemu-$name" $rw) $(vals "$TMP/librbd-$name" $rw)"
	done
} | awk '
function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
BEGIN {
	printf "%-9s | %8s %7s %8s | %8s %7s %8s | %8s %7s %8s | %11s %11s\n", "job",
		"ours MB/s", "IOPS", "lat", "qemu MB/s", "IOPS", "lat", "librbd MB/s", "IOPS", "lat", "ours/qemu", "ours/librbd"
}
{
	printf "%-9s | %9.1f %7d %8.0f | %9.1f %7d %8.0f | %11.1f %7d %8.0f | %11s %11s\n", $1,
		$2, $3, $4, $5, $6, $7, $8, $9, $10, ratio($3, $6), ratio($3, $9)
}'
echo "job: seqwrite/seqread 1 MiB QD8, randwrite/randread 4 KiB QD16; ratios are of IOPS"
# cpu TOOL JOB RW: µs of CPU per op for the server, fio (the client: libnbd,
# or librbd for the rbd engine) and the OSDs. Server and OSD times are
# sampled over ramp and run (SECS+1 s), fio's own over the run.
cpu() {
	local srv osd
	read -r srv osd <"$TMP/$1-$2.cpu"
	awk -F';' -v rw="$3" -v srv="$srv" -v osd="$osd" -v hz="$HZ" -v secs="$SECS" '{
		iops = (rw == "r") ? $8 : $49
		if (iops <= 0) { print "- - -"; exit }
		printf "%.0f %.0f %.0f\n", srv / hz * 1e6 / (iops * (secs + 1)), ($88 + $89) / 100 * 1e6 / iops,
			osd / hz * 1e6 / (iops * (secs + 1)) }' "$TMP/$1-$2"
}
echo "CPU per op, µs (server = csi-gorbd / qemu-nbd process; fio = the client, with librbd inside for the rbd engine):"
printf '%-9s | %6s %6s %6s | %6s %6s %6s | %6s %6s\n' job "ours" fio osd "qemu" fio osd "librbd" osd
for j in "${JOBS[@]}"; do
	name=${j%%:*}
	rw=w
	case $name in *read) rw=r ;; esac
	read -r os of oo < <(cpu ours "$name" $rw)
	read -r qs qf qo < <(cpu qemu "$name" $rw)
	read -r _ lf lo < <(cpu librbd "$name" $rw)
	printf '%-9s | %6s %6s %6s | %6s %6s %6s | %6s %6s\n' "$name" "$os" "$of" "$oo" "$qs" "$qf" "$qo" "$lf" "$lo"
done
echo "NBD layer alone (fio nbd engine -> csi-gorbd nbd serve --memory $IMG_SIZE):"
for j in "${JOBS[@]}"; do
	name=${j%%:*}
	rw=w
	case $name in *read) rw=r ;; esac
	read -r mb iops lat < <(vals "$TMP/mem-$name" $rw)
	printf '  %-9s %9.1f MiB/s %8d IOPS %8.0f µs\n' "$name" "$mb" "$iops" "$lat"
done
