#!/bin/bash
# bench/rbd.sh [CLUSTER]: `csi-gorbd rbd bench` against librbd's `rbd bench`
# on one image of a test cluster (default pacific), alternating the two
# tools per workload: 1 MiB sequential write, 4 KiB random write and read at
# 16 threads, 1 MiB sequential read. Prints a table with ops/s, MiB/s and
# the ratio ours/librbd. When fio has its rbd engine and the cluster's CLI
# is the host's (CEPH_CLI empty: fio links the host librbd), each workload
# also runs through fio --ioengine=rbd (same size, threads as iodepth) and
# the table adds fio's op/s and ours/fio. Not a test: numbers depend on the
# machine. GORBD_BENCH_PROFILE=DIR makes our runs write cpu/block/mutex
# pprof files there (the last workload's survive).
# Writes: `rbd bench` sends one bufferlist for every write, and librados
# caches a buffer's crc32c, so its writes skip the msgr2 data crc that
# every other client (ours, fio's rbd engine, a VM) computes per write;
# the fio column is the like-for-like librbd number for writes.
# librbd runs with rbd_cache=false by default (LIBRBD_CACHE=true for its
# defaults): Pacific's default cache policy is writearound, which
# completes writes before the OSDs have them (up to rbd_cache_max_dirty),
# and our client has no cache, so that would not compare like for like.
# Each workload runs REPS (3) times per client, alternating which goes
# first; the table shows medians.
#   Env: REPS (3), IMAGE_MB (256), SEQ_TOTAL (3G), RANDW_TOTAL (64M), LIBRBD_CACHE (false),
#        RANDR_TOTAL (160M), THREADS (16), BIN (bin/csi-gorbd, rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
# shellcheck disable=SC1090 # every CEPH_* of the cluster
. "$ENV"
IMAGE_MB=${IMAGE_MB:-256}
SEQ_TOTAL=${SEQ_TOTAL:-3G}
RANDW_TOTAL=${RANDW_TOTAL:-64M}
RANDR_TOTAL=${RANDR_TOTAL:-160M}
THREADS=${THREADS:-16}
REPS=${REPS:-3}
BIN=${BIN:-bin/csi-gorbd}
POOL=${CEPH_POOL:-rbd}
IMG=gorbd-bench-$$

CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
read -r -a CLI <<<"${CEPH_CLI:-}"
LIBRBD_CACHE=${LIBRBD_CACHE:-false}
rbdcli() { "${CLI[@]}" rbd --rbd_cache="$LIBRBD_CACHE" -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" "$@"; }
ours() { "$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" rbd -p "$POOL" "$@"; }

cleanup() { rbdcli rm "$IMG" >/dev/null 2>&1 || true; }
trap cleanup EXIT
rbdcli create "$IMG" --size "$IMAGE_MB"

# opsps TOOL ARGS...: run one bench, echo its ops/sec from the summary line.
opsps() {
	local tool=$1 out
	shift
	if [ "$tool" = ours ]; then out=$(ours bench "$IMG" "$@"); else out=$(rbdcli bench "$IMG" "$@" 2>&1); fi
	printf '%s\n' "$out" >&2
	printf '%s\n' "$out" | sed -n 's/^elapsed: .*ops\/sec: *\([0-9.e+]*\) .*/\1/p'
}

FIO=0
if [ -z "${CEPH_CLI:-}" ] && command -v fio >/dev/null && fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*rbd'; then FIO=1; fi
# fioops RW BS THREADS TOTAL: fio's rbd engine (librbd in process), op/s.
fioops() {
	local out
	out=$(CEPH_CONF="$CEPH_CONF" CEPH_ARGS="--keyring $CEPH_KEYRING --rbd_cache=$LIBRBD_CACHE" fio --name=gorbd-bench --ioengine=rbd \
		--clientname=admin --pool="$POOL" --rbdname="$IMG" --rw="$1" --bs="$2" --iodepth="$3" --numjobs=1 \
		--io_size="$4" --size="${IMAGE_MB}M" --output-format=terse --terse-version=3 2>&1) || true
	printf '%s\n' "$out" >&2
	# terse v3: $5 error, $8 read iops, $49 write iops
	printf '%s\n' "$out" | awk -F';' '/^3;/ && $5 == 0 { v = ($8 > 0 ? $8 : $49) } END { print v + 0 }'
}

printf '\n%-22s %12s %12s %10s %10s %7s %10s %8s\n' "workload" "librbd op/s" "ours op/s" "librbd MiB/s" "ours MiB/s" "ratio" \
	"fio op/s" "ours/fio" >/tmp/gorbd-bench-table.$$
# median V...: the median of numbers.
median() {
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
row() { # NAME IOSIZE FIO-RW ARGS...
	local name=$1 size=$2 rw=$3 lib our fio=0
	shift 3
	local libs=() ours=() fios=() rep total
	total=$(awk -v a="$*" 'BEGIN { n = split(a, w, " "); for (i = 1; i < n; i++) if (w[i] == "--io-total") print w[i+1] }')
	# REPS rounds, alternating which client goes first (the OSD is
	# still busy with the previous run's tail); the median is shown.
	for rep in $(seq "$REPS"); do
		if [ $((rep % 2)) = 1 ]; then
			libs+=("$(opsps rbd --io-size "$size" "$@")")
			ours+=("$(opsps ours --io-size "$size" "$@")")
		else
			ours+=("$(opsps ours --io-size "$size" "$@")")
			libs+=("$(opsps rbd --io-size "$size" "$@")")
		fi
		[ "$FIO" = 1 ] && fios+=("$(fioops "$rw" "$size" "$THREADS" "$total")")
	done
	lib=$(median "${libs[@]}")
	our=$(median "${ours[@]}")
	[ "$FIO" = 1 ] && fio=$(median "${fios[@]}")
	awk -v n="$name" -v s="$size" -v l="$lib" -v o="$our" -v f="$fio" 'BEGIN {
		printf "%-22s %12.0f %12.0f %10.1f %10.1f %7.2f", n, l, o, l*s/1048576, o*s/1048576, (l > 0 ? o/l : 0)
		if (f > 0) printf " %10.0f %8.2f", f, o/f; else printf " %10s %8s", "-", "-"
		printf "\n" }' \
		>>/tmp/gorbd-bench-table.$$
}
row "seq write 1M x$THREADS" 1048576 write --io-type write --io-threads "$THREADS" --io-total "$SEQ_TOTAL" --io-pattern seq
row "rand write 4K x$THREADS" 4096 randwrite --io-type write --io-threads "$THREADS" --io-total "$RANDW_TOTAL" --io-pattern rand
row "rand read 4K x$THREADS" 4096 randread --io-type read --io-threads "$THREADS" --io-total "$RANDR_TOTAL" --io-pattern rand
row "seq read 1M x$THREADS" 1048576 read --io-type read --io-threads "$THREADS" --io-total "$SEQ_TOTAL" --io-pattern seq
echo "cluster $CLUSTER ($CEPH_VERSION, ${CEPH_OBJECTSTORE:-?}), image $POOL/$IMG ${IMAGE_MB} MiB, librbd rbd_cache=$LIBRBD_CACHE, median of $REPS; ratio = ours/librbd ops/s"
cat /tmp/gorbd-bench-table.$$
rm -f /tmp/gorbd-bench-table.$$
