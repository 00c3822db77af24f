#!/bin/bash
# bench/rados.sh [CLUSTER] [SECONDS]: run csi-gorbd bench (pure Go) and
# rados bench (librados) against the same cluster and pool, one after the
# other, for 4 KiB and 4 MiB objects, write then seq read, with 1 and 16
# operations in flight, and print a table of both and the ratio ours/librados.
# Not a test: numbers depend on the machine. Needs a running cluster
# (test/cluster/start.sh CLUSTER) and its rados CLI (CEPH_CLI in cluster.env).
# Each write run stops at --max-objects (MAXOBJ_4K / MAXOBJ_4M, defaults
# 20000 and 150: 80 and 600 MiB) so the test clusters' 2 GiB memstore
# never fills, and every run's objects are removed before the next.
# The runs are short and the shared machine is noisy: REPS=N (default 3)
# repeats every pair N times, alternating which tool goes first, and the
# table shows the median of each column.
#   bench/rados.sh pacific 5
#   REPS=1 bench/rados.sh pacific 5   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
SECS=${2:-5}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
BIN=${BIN:-bin/csi-gorbd}
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd

ours() { "$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" bench -p "$POOL" "$@"; }
# shellcheck disable=SC2086 # CLI is a command prefix
theirs() { $CLI rados -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" bench "$@"; }

# field NAME FILE: the value of one summary line.
field() { sed -n "s/^$1: *//p" "$2" | head -1; }
# median NAME FILE...: the median of one summary line over several runs.
median() {
	local name=$1 f
	shift
	for f in "$@"; do field "$name" "$f"; done | sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
REPS=${REPS:-3}

MAXOBJ_4K=${MAXOBJ_4K:-20000}
MAXOBJ_4M=${MAXOBJ_4M:-150}
# shellcheck disable=SC2086
cleanup_all() {
	ours 0 cleanup -t 16 >/dev/null 2>&1 || true
	$CLI rados -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" cleanup >/dev/null 2>&1 || true
}
TMP=$(mktemp -d)
trap 'cleanup_all; rm -rf "$TMP"' EXIT
ROWS=()
for bs in 4096 4194304; do
	max=$MAXOBJ_4K
	[ "$bs" -ge 1048576 ] && max=$MAXOBJ_4M
	for t in 1 16; do
		for rep in $(seq "$REPS"); do
			order="ours theirs"
			[ $((rep % 2)) = 1 ] || order="theirs ours"
			for tool in $order; do
				echo "$tool: bench $SECS write -b $bs -t $t --max-objects $max; seq (round $rep/$REPS)" >&2
				$tool "$SECS" write -b "$bs" -t "$t" --max-objects "$max" --no-cleanup >"$TMP/$tool-write-$rep" 2>&1 ||
					{ cat "$TMP/$tool-write-$rep" >&2; exit 1; }
				$tool "$SECS" seq -t "$t" >"$TMP/$tool-seq-$rep" 2>&1 || { cat "$TMP/$tool-seq-$rep" >&2; exit 1; }
				cleanup_all
			done
		done
		for phase in write seq; do
			ROWS+=("$(printf '%s\t%s\t%s' "$bs" "$t" "$phase")")
			for tool in ours theirs; do
				fs=("$TMP/$tool-$phase"-*)
				ROWS[-1]+=$(printf '\t%s\t%s\t%s' "$(median 'Bandwidth (MB\/sec)' "${fs[@]}")" \
					"$(median 'Average IOPS' "${fs[@]}")" "$(median 'Average Latency(s)' "${fs[@]}")")
			done
			rm -f "$TMP"/*-"$phase"-*
		done
	done
done

echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")), pool $POOL, ${SECS}s per run, median of $REPS; MB = MiB"
printf '%s\n' "${ROWS[@]}" | awk -F'\t' '
function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
BEGIN {
	printf "%-8s %3s %-5s | %10s %8s %10s | %10s %8s %10s | %6s %6s %6s\n", "size", "t", "phase",
		"ours MB/s", "IOPS", "lat(s)", "rados MB/s", "IOPS", "lat(s)", "MB/s", "IOPS", "lat"
	printf "%-8s %3s %-5s | %10s %8s %10s | %10s %8s %10s | %20s\n", "", "", "", "", "", "", "", "", "", "ratio ours/librados"
}
{
	size = ($1 >= 1048576) ? ($1 / 1048576) "MiB" : ($1 / 1024) "KiB"
	printf "%-8s %3s %-5s | %10.2f %8d %10.6f | %10.2f %8d %10.6f | %6s %6s %6s\n", size, $2, $3,
		$4, $5, $6, $7, $8, $9, ratio($4, $7), ratio($5, $8), ratio($6, $9)
}'
