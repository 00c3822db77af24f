#!/bin/bash
# bench/restart.sh: how long an application's I/O stalls when the node
# plugin is killed with -9 and restarted, in the test VM (kernel nbd,
# test/vm/run.sh with VM_NET=1 and the host's pacific cluster).
# TestRestartLatency (test/vm/guest/restart_bench_test.go): "csi-gorbd all"
# stages an ext4 volume, a QD1 loop of 4 KiB O_DIRECT|O_DSYNC writes runs
# on a file in it, the plugin is killed and restarted ROUNDS (5) times; a
# round's number is the time from the kill to the completion of the first
# write after it. Once on a layering-only image and once with rbd's
# default features (the dead plugin's exclusive lock is taken over). Every
# block is verified at the end. Prints the per-round times and the median,
# and the plugin's own restart phases (log lines "restart phase").
# Not a test: times depend on the machine (the VM runs under TCG).
#   bench/restart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ENVF=$(mktemp)
OUT=$(mktemp)
trap 'rm -f "$ENVF" "$OUT"' EXIT
echo "GORBD_VM_RESTART_BENCH=1" >"$ENVF"
status=0
VM_NET=1 VM_RUN='^TestRestartLatency$' VM_ENV_FILE="$ENVF" bash test/vm/run.sh >"$OUT" 2>&1 || status=$?
grep -a -E 'round [0-9]+:|restart phase|restart-bench:|--- (PASS|FAIL)|^vm: ' "$OUT" | sed 's/^ *//'
if [ "$status" != 0 ]; then
	echo "VM run failed (exit $status); last lines:" >&2
	tail -40 "$OUT" >&2
fi
exit "$status"
