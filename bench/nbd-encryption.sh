#!/bin/bash
# bench/nbd-encryption.sh [CLUSTER] [SECONDS]: what encryption costs in our
# NBD server. fio's nbd engine drives, in rotating order over REPS (3)
# rounds per job:
#   plain  csi-gorbd nbd serve POOL/PLAIN
#   luks   csi-gorbd nbd serve POOL/ENC --encryption-format luks2 (LUKS2,
#          aes-xts-plain64, 512-bit key, 4096-byte sectors, as "rbd
#          encryption format" writes it; decrypted in the server process)
#   librbd qemu-nbd over librbd's own encryption of POOL/ENC (cache=none,
#          encrypt.format=luks2): the same image, librbd's crypto layer
# for 4 KiB random write/read at QD16 and 1 MiB sequential write/read at
# QD8, SECONDS (default 10) each, and prints IOPS, MiB/s, mean latency,
# the ratios luks/plain and luks/librbd, and CPU per op of the server
# process (µs). ENC is IMG_SIZE plus the 16 MiB header area, so both
# exports are IMG_SIZE. Goal (issue 17): luks ≥ 0.8 × plain.
# Not a test: numbers depend on the machine. dm-crypt over our plain NBD
# device needs the kernel's nbd and dm-crypt: that column is the VM's.
#   bench/nbd-encryption.sh pacific 10
# Env: REPS=3, IMG_SIZE=256M, JOBS_ONLY="randwrite seqread" (a subset).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
SECS=${2:-10}
REPS=${REPS:-3}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
IMG_SIZE=${IMG_SIZE:-256M}
bench_host_librbd qemu-nbd
bench_need fio qemu-nbd rbd numfmt
BIN=bin/csi-gorbd
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd
RBD=(rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING")

PLAIN=benchenc-plain-$$
ENC=benchenc-luks-$$
TMP=$(mktemp -d)
cleanup() {
	stop_server
	"${RBD[@]}" rm --no-progress "$POOL/$PLAIN" >/dev/null 2>&1 || true
	"${RBD[@]}" rm --no-progress "$POOL/$ENC" >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap cleanup EXIT
bytes=$(numfmt --from=iec "${IMG_SIZE%B}")
"${RBD[@]}" create --size "$((bytes >> 20))M" "$POOL/$PLAIN"
"${RBD[@]}" create --size "$(((bytes >> 20) + 16))M" "$POOL/$ENC"
head -c 32 /dev/urandom | base64 >"$TMP/pass"
"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" rbd encryption format "$POOL/$ENC" luks2 "$TMP/pass"

bench_jobs


start() {
	case $1 in
	plain)
		"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve "$POOL/$PLAIN" --listen "unix:$TMP/s.sock" 2>>"$TMP/srv.log" & ;;
	luks)
		"$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve "$POOL/$ENC" --listen "unix:$TMP/s.sock" \
			--encryption-format luks2 --encryption-passphrase-file "$TMP/pass" 2>>"$TMP/srv.log" & ;;
	librbd)
		CEPH_ARGS="--keyring $CEPH_KEYRING" qemu-nbd --cache=none --persistent --socket="$TMP/s.sock" \
			--object "secret,id=sec0,file=$TMP/pass" \
			--image-opts "driver=rbd,pool=$POOL,image=$ENC,conf=$CEPH_CONF,user=admin,encrypt.format=luks2,encrypt.key-secret=sec0" \
			2>>"$TMP/srv.log" & ;;
	esac
	SRV=$!
	wait_sock "$TMP/s.sock"
}

runjob() {
	local tool=$1 name=${2%%:*} args=${2#*:} out=$3 s0
	start "$tool"
	echo "$tool: $name ($args)" >&2
	s0=$(ticks "$SRV")
	# shellcheck disable=SC2086 # args is a word list
	fio --name="$name" --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/s.sock" $args --time_based --runtime="$SECS" \
		--ramp_time=1 --numjobs=1 --output-format=terse --terse-version=3 >"$out.out" 2>&1 || true
	echo "$(($(ticks "$SRV") - s0))" >"$out.cpu"
	stop_server
	rm -f "$TMP/s.sock"
	awk -F';' '/^3;/ && $5 == 0' "$out.out" | tail -1 >"$out"
	[ -s "$out" ] || { cat "$out.out" "$TMP/srv.log" >&2; exit 1; }
}

# Fill both images so that reads hit allocated, encrypted objects.
for tool in plain luks; do
	start "$tool"
	fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$TMP/s.sock" --rw=write --bs=4M --iodepth=4 \
		--size="$IMG_SIZE" >"$TMP/fill.out" 2>&1 || { cat "$TMP/fill.out" >&2; exit 1; }
	stop_server
	rm -f "$TMP/s.sock"
done

for j in "${JOBS[@]}"; do
	bench_rotate "$j" "$TMP" plain luks librbd
done

pick() {
	local f
	for f in "$TMP/$1-$2"-[0-9]*; do
		case $f in *.out | *.cpu) continue ;; esac
		awk -F';' -v rw="$3" -v f="$f" '{ print ((rw == "r") ? $8 : $49), f }' "$f"
	done | sort -g | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }'
}
# MiB/s IOPS lat(µs) cpu(µs/op) of one result file
vals() {
	awk -F';' -v rw="$2" -v cpu="$(cat "$1.cpu")" -v hz="$HZ" -v secs="$SECS" '{
		if (rw == "r") { mb = $7/1024; iops = $8; lat = $40 } else { mb = $48/1024; iops = $49; lat = $81 }
		c = (iops > 0) ? cpu / hz * 1e6 / (iops * (secs + 1)) : 0
		print mb, iops, lat, c }' "$1"
}
echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")), pool $POOL, exports of $IMG_SIZE, ${SECS}s per run, median of $REPS rounds"
echo "MB = MiB/s, lat = mean µs, cpu = server CPU µs per op (csi-gorbd or qemu-nbd+librbd)"
bench_rows plain luks librbd | awk '
function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "-" }
BEGIN {
	printf "%-9s | %7s %6s %6s %5s | %7s %6s %6s %5s | %7s %6s %6s %5s | %10s %11s\n", "job",
		"plain MB", "IOPS", "lat", "cpu", "luks MB", "IOPS", "lat", "cpu", "librbd MB", "IOPS", "lat", "cpu", "luks/plain", "luks/librbd"
}
{
	printf "%-9s | %8.1f %6d %6.0f %5.0f | %7.1f %6d %6.0f %5.0f | %9.1f %6d %6.0f %5.0f | %10s %11s\n", $1,
		$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, ratio($7, $3), ratio($7, $11)
}'
echo "job: seqwrite/seqread 1 MiB QD8, randwrite/randread 4 KiB QD16; ratios are of IOPS"
