#!/bin/bash
# bench/nbd.sh [CLUSTER] [SECONDS]: the same RBD image read and written by
# fio three ways, in rotating order over REPS (3) rounds per job, once per
# image-feature set in FEATURES (default "layering default": a
# layering-only image, what the chart's StorageClass and ceph-csi's
# examples create, and one with rbd's default features, exclusive-lock,
# object-map, fast-diff and deep-flatten, whose lock the writer takes):
#   ours     fio's nbd engine → csi-gorbd nbd serve POOL/IMG (pure Go)
#   qemu-nbd fio's nbd engine → qemu-nbd serving rbd:POOL/IMG (librbd, cache=none)
#   librbd   fio's rbd engine (librbd in process, no NBD, rbd_cache=false)
# for 4 KiB random write/read at QD16 and 1 MiB sequential write/read at
# QD8, SECONDS (default 10) each, and prints a table with the ratios
# ours/qemu-nbd and ours/librbd, then the same jobs against
# "nbd serve --memory" (the NBD layer's own ceiling, no Ceph) and fio's rbd
# engine with librbd's cache on (one round).
# Why the librbd column has its cache off: fio's rbd engine flushes once at
# open so that librbd's cache leaves writethrough mode, and Pacific's
# default cache policy, writearound, then completes a write as soon as it
# is sent, before the OSD has it (up to rbd_cache_max_dirty, 24 MiB, in
# flight). Both NBD servers complete a write when the OSD has committed it
# (qemu-nbd runs cache=none, which turns librbd's cache off), so the
# like-for-like librbd number is the one without the cache; the cached one
# is printed below the table.
# Not a test: numbers depend on the machine.
# Needs a cluster whose librbd matches the host's (the host suite, pacific)
# and qemu-block-extra (qemu's rbd driver). The image (IMG_SIZE, default
# 256M) is removed at the end.
#   bench/nbd.sh pacific 10
# Env: REPS=3, IMG_SIZE=256M, JOBS_ONLY="randwrite seqwrite" (a subset),
#      FEATURES="layering default" (either or both),
#      CEPH_CPUS=0 CLIENT_CPUS=1: pin the cluster's daemons (mon, mgr, OSDs)
#      to one CPU list and fio plus the NBD server to another (taskset), as
#      if the OSDs ran on their own host; the daemons are unpinned at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
SECS=${2:-10}
REPS=${REPS:-3}
IMG_SIZE=${IMG_SIZE:-256M}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_cluster "$CLUSTER"
bench_host_librbd "qemu-nbd and fio's rbd engine"
bench_need fio qemu-nbd rbd
TS=()
if [ -n "${CLIENT_CPUS:-}" ]; then TS=(taskset -c "$CLIENT_CPUS"); fi
BIN=bin/csi-gorbd
CGO_ENABLED=0 go build -o "$BIN" ./cmd/csi-gorbd

FEATURES=${FEATURES:-layering default}
for fs in $FEATURES; do
	case $fs in layering | default) ;; *) echo "FEATURES: $fs is neither layering nor default" >&2; exit 1 ;; esac
done
IMGS=()
TMP=$(mktemp -d)
DAEMONS=()
cleanup() {
	stop_server
	local p
	for p in "${DAEMONS[@]}"; do taskset -a -p -c "0-$(($(nproc) - 1))" "$p" >/dev/null 2>&1 || true; done
	for p in "${IMGS[@]}"; do
		rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" rm --no-progress "$POOL/$p" >/dev/null 2>&1 || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# The jobs, in this order: the sequential write first fills the image so
# that the reads hit allocated objects for every tool.
bench_jobs

OSDS=()
for f in "$CEPH_DIR"/run/osd.*.pid; do [ -f "$f" ] && OSDS+=("$(cat "$f")"); done
if [ -n "${CEPH_CPUS:-}" ]; then
	for f in "$CEPH_DIR"/run/*.pid; do
		[ -f "$f" ] || continue
		DAEMONS+=("$(cat "$f")")
		taskset -a -p -c "$CEPH_CPUS" "$(cat "$f")" >/dev/null
	done
fi

# start TOOL: start TOOL's server (none for librbd) and set ENGINE to
# fio's engine arguments for it.
start() {
	RBD_CACHE=false
	case $1 in
	ours)
		"${TS[@]}" "$BIN" -c "$CEPH_CONF" -k "$CEPH_KEYRING" nbd serve "$POOL/$IMG" --listen "unix:$TMP/ours.sock" 2>>"$TMP/ours.log" &
		SRV=$!
		wait_sock "$TMP/ours.sock"
		ENGINE=(--ioengine=nbd --uri="nbd+unix:///?socket=$TMP/ours.sock") ;;
	qemu) # qemu-nbd through librbd, without librbd's cache (like ours)
		"${TS[@]}" qemu-nbd -f raw --cache=none --persistent --socket="$TMP/qemu.sock" \
			"rbd:$POOL/$IMG:conf=$CEPH_CONF:id=admin:keyring=$CEPH_KEYRING" 2>>"$TMP/qemu.log" &
		SRV=$!
		wait_sock "$TMP/qemu.sock"
		ENGINE=(--ioengine=nbd --uri="nbd+unix:///?socket=$TMP/qemu.sock") ;;
	mem) # the NBD layer alone, no Ceph
		"${TS[@]}" "$BIN" nbd serve --memory "$IMG_SIZE" --listen "unix:$TMP/mem.sock" 2>>"$TMP/mem.log" &
		SRV=$!
		wait_sock "$TMP/mem.sock"
		ENGINE=(--ioengine=nbd --uri="nbd+unix:///?socket=$TMP/mem.sock") ;;
	librbd) # fio's rbd engine: librbd in process, its cache off (see above)
		ENGINE=(--ioengine=rbd --clientname=admin --pool="$POOL" --rbdname="$IMG") ;;
	librbdcache) # the same with librbd's default cache (writearound)
		ENGINE=(--ioengine=rbd --clientname=admin --pool="$POOL" --rbdname="$IMG")
		RBD_CACHE=true ;;
	esac
}

# runjob TOOL JOB OUT: start TOOL, run JOB (NAME:ARGS), stop; the terse v3
# line goes to OUT and the CPU ticks of the server and the OSDs to OUT.cpu.
runjob() {
	local tool=$1 name=${2%%:*} args=${2#*:} out=$3 s0 o0
	start "$tool"
	echo "$tool: $name ($args)" >&2
	s0=$(ticks ${SRV:+"$SRV"})
	o0=$(ticks "${OSDS[@]}")
	# shellcheck disable=SC2086 # args is a word list
	CEPH_CONF="$CEPH_CONF" CEPH_ARGS="--keyring $CEPH_KEYRING --rbd_cache=$RBD_CACHE" /usr/bin/time -f '%U %S' -o "$out.time" \
		"${TS[@]}" fio --name="$name" "${ENGINE[@]}" $args --time_based --runtime="$SECS" --ramp_time=1 --numjobs=1 \
		--output-format=terse --terse-version=3 >"$out.out" 2>&1 || true
	# server ticks, OSD ticks, fio's CPU seconds (all its threads: librbd's
	# too for the rbd engine)
	echo "$(($(ticks ${SRV:+"$SRV"}) - s0)) $(($(ticks "${OSDS[@]}") - o0)) $(awk '{ print $1 + $2 }' "$out.time")" >"$out.cpu"
	stop_server
	# fio may exit 0 when the engine fails to connect: want one result
	# line with error 0.
	awk -F';' '/^3;/ && $5 == 0' "$out.out" | tail -1 >"$out"
	[ -s "$out" ] || { cat "$out.out" >&2; exit 1; }
}

FIRST=${FEATURES%% *}
for fs in $FEATURES; do
	D=$TMP/$fs
	mkdir -p "$D"
	IMG=benchnbd-$$-$fs
	IMGS+=("$IMG")
	FEAT=()
	[ "$fs" != layering ] || FEAT=(--image-feature layering)
	rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" create --size "$IMG_SIZE" "${FEAT[@]}" "$POOL/$IMG"
	FEATDESC="$fs features ($(rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" info "$POOL/$IMG" | sed -n 's/^[[:space:]]*features: //p'))"
	# Fill the image first so that every tool's reads hit allocated objects.
	start ours
	fio --name=fill "${ENGINE[@]}" --rw=write --bs=4M --iodepth=4 --size="$IMG_SIZE" >"$D/fill.out" 2>&1 ||
		{ cat "$D/fill.out" >&2; exit 1; }
	stop_server

	# Each job REPS times per tool, the order of the tools rotating from round
	# to round (the OSD's speed drifts over a run); the table shows the round
	# with the median IOPS.
	for j in "${JOBS[@]}"; do
		bench_rotate "$j" "$D" ours qemu librbd
		[ "$fs" != "$FIRST" ] || runjob mem "$j" "$D/mem-${j%%:*}-1"
		runjob librbdcache "$j" "$D/librbdcache-${j%%:*}-1"
	done

	# pick TOOL JOB RW: the result file of the round with the median IOPS.
	pick() {
		local f
		for f in "$D/$1-$2"-[0-9]*; do
			case $f in *.out | *.cpu | *.time) continue ;; esac
			awk -F';' -v rw="$3" -v f="$f" '{ print ((rw == "r") ? $8 : $49), f }' "$f"
		done | sort -g | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }'
	}

	# terse v3: read bw KiB/s $7, iops $8, lat mean µs $40; write $48, $49, $81.
	vals() {
		awk -F';' -v rw="$2" '{ if (rw == "r") print $7/1024, $8, $40; else print $48/1024, $49, $81 }' "$1"
	}
	echo "cluster $CLUSTER ($(sed -n 's/^CEPH_VERSION=//p' "$ENV")), pool $POOL, image $IMG_SIZE with $FEATDESC, ${SECS}s per run, median of $REPS rounds; MB = MiB, lat = mean µs"
	[ -z "${CEPH_CPUS:-}${CLIENT_CPUS:-}" ] || echo "pinned: Ceph daemons on CPUs ${CEPH_CPUS:-all}, fio and the NBD servers on CPUs ${CLIENT_CPUS:-all}"
	bench_rows ours qemu librbd | awk '
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
	# cpu FILE RW: µs of CPU per op for the server, fio (the client: libnbd,
	# or librbd and its threads for the rbd engine) and the OSDs, over ramp
	# and run (SECS+1 s; fio's start-up counts too).
	cpu() {
		local srv osd fio
		read -r srv osd fio <"$1.cpu"
		awk -F';' -v rw="$2" -v srv="$srv" -v osd="$osd" -v fio="$fio" -v hz="$HZ" -v secs="$SECS" '{
			iops = (rw == "r") ? $8 : $49
			if (iops <= 0) { print "- - -"; exit }
			ops = iops * (secs + 1)
			printf "%.0f %.0f %.0f\n", srv / hz * 1e6 / ops, fio * 1e6 / ops, osd / hz * 1e6 / ops }' "$1"
	}
	echo "CPU per op, µs (server = csi-gorbd / qemu-nbd process; fio = the client, with librbd inside for the rbd engine):"
	printf '%-9s | %6s %6s %6s | %6s %6s %6s | %6s %6s\n' job "ours" fio osd "qemu" fio osd "librbd" osd
	for j in "${JOBS[@]}"; do
		name=${j%%:*}
		rw=w
		case $name in *read) rw=r ;; esac
		read -r os of oo < <(cpu "$(pick ours "$name" $rw)" $rw)
		read -r qs qf qo < <(cpu "$(pick qemu "$name" $rw)" $rw)
		read -r _ lf lo < <(cpu "$(pick librbd "$name" $rw)" $rw)
		printf '%-9s | %6s %6s %6s | %6s %6s %6s | %6s %6s\n' "$name" "$os" "$of" "$oo" "$qs" "$qf" "$qo" "$lf" "$lo"
	done
	# extra TOOL TITLE: the one round of TOOL per job, under TITLE.
	extra() {
		local j name rw mb iops lat
		echo "$2"
		for j in "${JOBS[@]}"; do
			name=${j%%:*}
			rw=w
			case $name in *read) rw=r ;; esac
			read -r mb iops lat < <(vals "$D/$1-$name-1" $rw)
			printf '  %-9s %9.1f MiB/s %8d IOPS %8.0f µs\n' "$name" "$mb" "$iops" "$lat"
		done
	}
	[ "$fs" != "$FIRST" ] || extra mem "NBD layer alone (fio nbd engine -> csi-gorbd nbd serve --memory $IMG_SIZE):"
	extra librbdcache "librbd with its cache on (fio rbd engine, rbd_cache=true: writes complete before the OSD has them):"
	echo
	rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" rm --no-progress "$POOL/$IMG" >/dev/null 2>&1 || true
done
