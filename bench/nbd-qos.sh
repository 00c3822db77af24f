#!/bin/bash
# bench/nbd-qos.sh [CLUSTER]: what QoS costs, measured, in one run.
#
# 1. A volume without limits pays nothing for QoS: fio (nbd engine, 4k
#    random 50/50 read/write, QD 16, RUNTIME s) against one
#    "csi-gorbd nbd serve" per configuration, the configurations
#    interleaved round after round (so a busy moment of the machine hits
#    them alike), medians over ROUNDS:
#      memory  no limiter (the path as it was before QoS)
#              a limiter without limits (a CSI volume without QoS)
#              limits set but never reached (the limiter's lock and clock
#              on every request)
#              + the per-volume metrics observer
#      rbd     --qos=false | --qos, image without limits | --qos, image
#              limit far above reach (on an image of a pool of our own)
#    Printed: IOPS and the server's CPU time per request (utime+stime
#    from /proc), and their ratio to the first configuration. fio and the
#    server share the machine's cores, so the CPU per request is the
#    steadier figure of the two.
# 2. Limited volumes cost no OS threads: N images (default 100) in the
#    same pool with a pool-level limit, one "nbd serve" for all, fio with
#    one job per export: the server's threads idle, with every export
#    throttled, and with --qos=false under the same load.
#
#   bench/nbd-qos.sh pacific
# Env: ROUNDS=7 RUNTIME=6 N=100 LIMIT=20 (IOPS per image in part 2)
# The images are small (64 MiB, 100 × 4 MiB): the test clusters' memstore
# OSDs hold 2 GiB.
# Needs fio with the nbd engine. The pool is named benchqos-<pid> and
# deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
ROUNDS=${ROUNDS:-7}
RUNTIME=${RUNTIME:-6}
N=${N:-100}
LIMIT=${LIMIT:-20}
ENV=${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/$CLUSTER/cluster.env
[ -f "$ENV" ] || { echo "no $ENV: start the cluster first (test/cluster/start.sh $CLUSTER)" >&2; exit 1; }
CEPH_CONF=$(sed -n 's/^CEPH_CONF=//p' "$ENV")
CEPH_KEYRING=$(sed -n 's/^CEPH_KEYRING=//p' "$ENV")
CLI=$(sed -n 's/^CEPH_CLI=//p' "$ENV" | tr -d '"')
command -v fio >/dev/null || { echo "missing fio (test/deps.sh)" >&2; exit 1; }
export PATH=/usr/local/go/bin:$PATH
BIN=bin/csi-gorbd
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
CEPH=($CLI ceph -c "$CEPH_CONF" -k "$CEPH_KEYRING")
RBD=($CLI rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING")
POOL=benchqos-$$
TMP=$(mktemp -d)
SERVER=
stop_server() {
	[ -z "$SERVER" ] && return
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
	SERVER=
}
cleanup() {
	stop_server
	"${CEPH[@]}" osd pool delete "$POOL" "$POOL" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT
"${CEPH[@]}" osd pool create "$POOL" 32 32 >/dev/null 2>&1
"${RBD[@]}" pool init "$POOL"
"${RBD[@]}" create --size 64M "$POOL/cost"

# serve ARGS...: starts nbd serve on $TMP/s.sock, sets SERVER.
serve() {
	rm -f "$TMP/s.sock"
	"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve --listen "unix:$TMP/s.sock" "$@" 2>"$TMP/serve.log" &
	SERVER=$!
	for _ in $(seq 600); do [ -S "$TMP/s.sock" ] && return 0; sleep 0.1; done
	echo "nbd serve $* did not come up:" >&2; cat "$TMP/serve.log" >&2; exit 1
}
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one NAME ARGS...: one fio run against a fresh server; appends
# "NAME IOS CPU_TICKS" to $TMP/rows.
one() {
	local name=$1; shift
	serve "$@"
	local t0 t1 ios
	t0=$(cputicks "$SERVER")
	ios=$(fio --name=cost --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/s.sock" --rw=randrw --rwmixread=50 \
		--bs=4k --iodepth=16 --size=64M --time_based --runtime="$RUNTIME" --output-format=json |
		python3 -c 'import json,sys; s=sys.stdin.read(); j=json.loads(s[s.index("{"):])["jobs"][0]; print(j["read"]["total_ios"]+j["write"]["total_ios"])')
	t1=$(cputicks "$SERVER")
	stop_server
	echo "$name $ios $((t1 - t0))" >>"$TMP/rows"
}

HUGE=1000000000
MEM=(--memory 64M)
echo "part 1: $ROUNDS rounds of ${RUNTIME}s per configuration ..." >&2
for r in $(seq 1 "$ROUNDS"); do
	one mem-no-limiter "${MEM[@]}"
	one mem-limiter-unlimited "${MEM[@]}" --qos-limit rbd_qos_schedule_tick_min=50
	one mem-limits-unreached "${MEM[@]}" --qos-limit rbd_qos_iops_limit=$HUGE --qos-limit rbd_qos_bps_limit=$HUGE
	one mem-unreached+metrics "${MEM[@]}" --qos-limit rbd_qos_iops_limit=$HUGE --qos-limit rbd_qos_bps_limit=$HUGE --metrics-address 127.0.0.1:0
	one rbd-qos-off "$POOL/cost" --qos=false
	one rbd-qos-unlimited "$POOL/cost"
	"${RBD[@]}" config image set "$POOL/cost" rbd_qos_iops_limit $HUGE
	one rbd-limit-unreached "$POOL/cost"
	"${RBD[@]}" config image remove "$POOL/cost" rbd_qos_iops_limit
	echo "  round $r done" >&2
done
echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")): fio nbd 4k randrw 50/50 QD16 ${RUNTIME}s, medians of $ROUNDS interleaved rounds"
python3 - "$TMP/rows" "$RUNTIME" "$(getconf CLK_TCK)" <<'EOF'
import sys, statistics, collections
runtime, hz = int(sys.argv[2]), int(sys.argv[3])
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    name, ios, ticks = line.split()
    ios, ticks = int(ios), int(ticks)
    rows.setdefault(name, []).append((ios / runtime, ticks / hz * 1e6 / max(ios, 1)))
print(f"{'configuration':24} {'IOPS':>8} {'min..max':>15} {'ratio':>6} {'CPU µs/op':>10} {'ratio':>6}")
base = {}
for name, v in rows.items():
    iops = statistics.median(x[0] for x in v); cpu = statistics.median(x[1] for x in v)
    fam = name.split('-')[0]
    base.setdefault(fam, (iops, cpu))
    b = base[fam]
    rng = f"{min(x[0] for x in v):.0f}..{max(x[0] for x in v):.0f}"
    print(f"{name:24} {iops:8.0f} {rng:>15} {iops/b[0]:6.3f} {cpu:10.1f} {cpu/b[1] if b[1] else 0:6.3f}")
EOF

echo >&2; echo "part 2: $N images, pool limit rbd_qos_iops_limit=$LIMIT ..." >&2
specs=()
for i in $(seq 1 "$N"); do "${RBD[@]}" create --size 4M "$POOL/many-$i"; specs+=("$POOL/many-$i"); done
"${RBD[@]}" config pool set "$POOL" rbd_qos_iops_limit "$LIMIT"
jobfile=$TMP/many.fio
{
	echo "[global]"; echo "ioengine=nbd"; echo "rw=randwrite"; echo "bs=4k"; echo "iodepth=4"
	echo "size=4M"; echo "time_based"; echo "runtime=$RUNTIME"
	for s in "${specs[@]}"; do echo "[$s]"; echo "uri=nbd+unix:///$s?socket=$TMP/s.sock"; done
} >"$jobfile"
threads() { awk '/^Threads:/{print $2}' "/proc/$1/status"; }
# load NAME ARGS...: threads idle and at the end of a throttled fio run.
load() {
	local name=$1; shift
	serve "$@" "${specs[@]}"
	local idle; idle=$(threads "$SERVER")
	fio --output-format=json "$jobfile" >"$TMP/many.json" &
	local fiopid=$!
	sleep $((RUNTIME - 1))
	local busy; busy=$(threads "$SERVER")
	wait "$fiopid"
	local iops
	iops=$(python3 -c 'import json,sys; s=open(sys.argv[1]).read(); print(sum(j["write"]["total_ios"] for j in json.loads(s[s.index("{"):])["jobs"]))' "$TMP/many.json")
	stop_server
	printf "%-32s %8s %14s %14s\n" "$name" "$idle" "$busy" "$((iops / RUNTIME))"
}
printf "%-32s %8s %14s %14s\n" "one nbd serve, $N exports" "threads" "threads busy" "IOPS (all)"
load "each limited to $LIMIT IOPS (pool)"
load "--qos=false (unlimited)" --qos=false
"${RBD[@]}" config pool remove "$POOL" rbd_qos_iops_limit
