#!/bin/bash
# bench/csi.sh [CLUSTER]: COUNT CreateVolume+DeleteVolume pairs through the
# CSI gRPC API of a csi-gorbd controller (started here, on a unix socket),
# next to COUNT `rbd create` + `rbd rm` pairs of librbd's CLI on the same
# cluster and pool (default pacific). Prints p50/p99 per operation and per
# pair. Not a test: numbers depend on the machine.
#   Env: COUNT (100), SIZE_MB (1024), BIN (bin/csi-gorbd, rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
COUNT=${COUNT:-100}
SIZE_MB=${SIZE_MB:-1024}
BIN=${BIN:-bin/csi-gorbd}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
# shellcheck disable=SC1090 # every CEPH_* of the cluster
. "$ENV"
POOL=${CEPH_POOL:-rbd}
RUN=csibench-$$
TMP=$(mktemp -d)
PID=

CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
read -r -a CLI <<<"${CEPH_CLI:-}"
rbdcli() { "${CLI[@]}" rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" "$@"; }

cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	for i in $(seq 0 $((COUNT - 1))); do rbdcli rm "gorbd-$RUN-rbd-$i" >/dev/null 2>&1 || true; done
	"${CLI[@]}" rados -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$POOL" rm "csi.volumes.$RUN" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT

printf '[{"clusterID":"%s","monitors":["%s"]}]\n' "$RUN" "$CEPH_MON_V2" >"$TMP/clusters.json"
"$BIN" controller --endpoint "unix://$TMP/csi.sock" --clusters "$TMP/clusters.json" --state-dir "$TMP/state" \
	--instance-id "$RUN" --v=0 2>"$TMP/controller.log" &
PID=$!
for _ in $(seq 100); do [ -S "$TMP/csi.sock" ] && break; sleep 0.1; done
C=("$BIN" -k "$CEPH_KEYRING" csi --endpoint "unix://$TMP/csi.sock" --user admin)
"${C[@]}" probe
echo
"${C[@]}" bench --count "$COUNT" --size "$SIZE_MB" --name-prefix "$RUN-" \
	--param clusterID="$RUN" --param pool="$POOL" --param volumeNamePrefix="gorbd-$RUN-v-"

# The same pairs with librbd's CLI (one process per command, as an operator
# or ceph-csi's old exec path would run them).
ns() { date +%s%N; }
: >"$TMP/c"; : >"$TMP/d"; : >"$TMP/p"
for i in $(seq 0 $((COUNT - 1))); do
	t0=$(ns)
	rbdcli create "gorbd-$RUN-rbd-$i" --size "$SIZE_MB" --image-feature layering
	t1=$(ns)
	rbdcli rm --no-progress "gorbd-$RUN-rbd-$i"
	t2=$(ns)
	echo $(((t1 - t0) / 1000)) >>"$TMP/c"
	echo $(((t2 - t1) / 1000)) >>"$TMP/d"
	echo $(((t2 - t0) / 1000)) >>"$TMP/p"
done
# pct FILE: n, p50, p99 and max in ms (nearest rank) of microsecond lines.
pct() {
	sort -n "$1" | awk '{a[NR]=$1} END {
		r50=int(0.50*NR+0.999999); r99=int(0.99*NR+0.999999)
		printf "%5d %9.1f %9.1f %9.1f\n", NR, a[r50]/1000, a[r99]/1000, a[NR]/1000 }'
}
echo
printf '%-22s %5s %9s %9s %9s\n' "rbd CLI (librbd)" n "p50 ms" "p99 ms" "max ms"
printf '%-22s %s\n' "rbd create" "$(pct "$TMP/c")"
printf '%-22s %s\n' "rbd rm" "$(pct "$TMP/d")"
printf '%-22s %s\n' "create+rm pair" "$(pct "$TMP/p")"
