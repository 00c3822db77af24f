#!/bin/bash
# bench/rbd.sh [CLUSTER]: `csi-gorbd rbd bench` against librbd's `rbd bench`
# on one image of a test cluster (default pacific), alternating the two
# tools per workload: 1 MiB sequential write, 4 KiB random write and read at
# 16 threads, 1 MiB sequential read. Prints a table with ops/s, MiB/s and
# the ratio ours/librbd. Not a test: numbers depend on the machine.
#   Env: IMAGE_MB (256), SEQ_TOTAL (3G), RANDW_TOTAL (64M),
#        RANDR_TOTAL (160M), THREADS (16), BIN (bin/csi-gorbd, rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
ENV=${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/$CLUSTER/cluster.env
[ -f "$ENV" ] || { echo "no cluster $CLUSTER ($ENV); start it with test/cluster" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV"
IMAGE_MB=${IMAGE_MB:-256}
SEQ_TOTAL=${SEQ_TOTAL:-3G}
RANDW_TOTAL=${RANDW_TOTAL:-64M}
RANDR_TOTAL=${RANDR_TOTAL:-160M}
THREADS=${THREADS:-16}
BIN=${BIN:-bin/csi-gorbd}
POOL=${CEPH_POOL:-rbd}
IMG=gorbd-bench-$$

CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
read -r -a CLI <<<"${CEPH_CLI:-}"
rbdcli() { "${CLI[@]}" rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" "$@"; }
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

printf '\n%-22s %12s %12s %10s %10s %7s\n' "workload" "librbd op/s" "ours op/s" "librbd MiB/s" "ours MiB/s" "ratio" >/tmp/gorbd-bench-table.$$
row() { # NAME IOSIZE ARGS...
	local name=$1 size=$2 lib our
	shift 2
	lib=$(opsps rbd --io-size "$size" "$@")
	our=$(opsps ours --io-size "$size" "$@")
	awk -v n="$name" -v s="$size" -v l="$lib" -v o="$our" 'BEGIN {
		printf "%-22s %12.0f %12.0f %10.1f %10.1f %7.2f\n", n, l, o, l*s/1048576, o*s/1048576, (l > 0 ? o/l : 0) }' \
		>>/tmp/gorbd-bench-table.$$
}
row "seq write 1M x$THREADS" 1048576 --io-type write --io-threads "$THREADS" --io-total "$SEQ_TOTAL" --io-pattern seq
row "rand write 4K x$THREADS" 4096 --io-type write --io-threads "$THREADS" --io-total "$RANDW_TOTAL" --io-pattern rand
row "rand read 4K x$THREADS" 4096 --io-type read --io-threads "$THREADS" --io-total "$RANDR_TOTAL" --io-pattern rand
row "seq read 1M x$THREADS" 1048576 --io-type read --io-threads "$THREADS" --io-total "$SEQ_TOTAL" --io-pattern seq
echo "cluster $CLUSTER ($CEPH_VERSION, ${CEPH_OBJECTSTORE:-?}), image $POOL/$IMG ${IMAGE_MB} MiB; ratio = ours/librbd ops/s"
cat /tmp/gorbd-bench-table.$$
rm -f /tmp/gorbd-bench-table.$$
