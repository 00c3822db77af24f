#!/bin/bash
# bench/lib.sh: what the benchmarks share; sourced, never run.
#   bench_cluster CLUSTER   sets ENV (the cluster's cluster.env), CEPH_CONF,
#                           CEPH_KEYRING, POOL (unless set), CLI (the chroot
#                           prefix of its CLIs, empty for the host's) and
#                           CEPH_DIR; exits when the cluster is not there
#   bench_host_librbd WHY   exits unless the cluster's CLIs are the host's
#                           (qemu-nbd and fio's rbd engine link the host's librbd)
#   bench_need TOOL...      exits naming the first missing tool
#   wait_sock PATH [TENTHS] waits for a unix socket (default 10 s)
#   stop_server             kills and reaps $SRV if set
#   bench_jobs              sets JOBS (the four fio jobs, seqwrite first so
#                           reads hit written objects), cut to $JOBS_ONLY
#   bench_rotate JOB DIR TOOL...
#                           runs the fio job REPS times per tool (runjob TOOL
#                           JOB DIR/TOOL-JOBNAME-ROUND, the script's own), the
#                           tools' order rotating from round to round: the
#                           OSD's speed drifts over a run
#   bench_rows TOOL...      one line per job of JOBS: its name, then for
#                           each tool the script's vals of its pick (the
#                           median round), for the script's table
#   ticks PID...            CPU time (user + system, clock ticks) used so far
#                           by the processes (0 for one that is gone); HZ

bench_cluster() {
	ENV=${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/$1/cluster.env
	[ -f "$ENV" ] || { echo "no $ENV: start the cluster first (test/cluster/start.sh $1)" >&2; exit 1; }
	CEPH_CONF=$(sed -n 's/^CEPH_CONF=//p' "$ENV")
	CEPH_KEYRING=$(sed -n 's/^CEPH_KEYRING=//p' "$ENV")
	POOL=${POOL:-$(sed -n 's/^CEPH_POOL=//p' "$ENV")}
	CLI=$(sed -n 's/^CEPH_CLI=//p' "$ENV" | tr -d '"')
	CEPH_DIR=$(sed -n 's/^CEPH_DIR=//p' "$ENV")
}

bench_host_librbd() {
	[ -z "$CLI" ] || { echo "the cluster runs its CLI in a chroot; $1 needs the host's librbd to match (use pacific)" >&2; exit 1; }
}

bench_need() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null || { echo "missing $t (test/deps.sh)" >&2; exit 1; }; done
}

wait_sock() {
	local _
	for _ in $(seq "${2:-100}"); do [ -S "$1" ] && return 0; sleep 0.1; done
	echo "server did not come up on $1" >&2
	exit 1
}

SRV=
stop_server() {
	if [ -n "$SRV" ]; then
		kill "$SRV" 2>/dev/null || true
		wait "$SRV" 2>/dev/null || true
		SRV=
	fi
}

bench_jobs() {
	JOBS=("seqwrite:--rw=write --bs=1M --iodepth=8" "randwrite:--rw=randwrite --bs=4k --iodepth=16"
		"randread:--rw=randread --bs=4k --iodepth=16" "seqread:--rw=read --bs=1M --iodepth=8")
	[ -n "${JOBS_ONLY:-}" ] || return 0
	local sel=() j
	for j in "${JOBS[@]}"; do
		case " $JOBS_ONLY " in *" ${j%%:*} "*) sel+=("$j") ;; esac
	done
	[ ${#sel[@]} -gt 0 ] || { echo "JOBS_ONLY=$JOBS_ONLY names no job (seqwrite randwrite randread seqread)" >&2; exit 1; }
	JOBS=("${sel[@]}")
}

bench_rotate() {
	local j=$1 dir=$2 rep k tool
	shift 2
	local tools=("$@")
	for rep in $(seq "$REPS"); do
		for ((k = 0; k < ${#tools[@]}; k++)); do
			tool=${tools[$(((k + rep - 1) % ${#tools[@]}))]}
			runjob "$tool" "$j" "$dir/$tool-${j%%:*}-$rep"
		done
	done
}

bench_rows() {
	local j name rw t line
	for j in "${JOBS[@]}"; do
		name=${j%%:*}
		rw=w
		case $name in *read) rw=r ;; esac
		line=$name
		for t in "$@"; do line="$line $(vals "$(pick "$t" "$name" $rw)" $rw)"; done
		echo "$line"
	done
}

ticks() {
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "$t"
}
HZ=$(getconf CLK_TCK)
