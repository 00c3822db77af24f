#!/bin/bash
# bench/vm-encryption.sh [CLUSTER] [SECONDS]: encryption in the VM, where the
# kernel's nbd and dm-crypt exist. Boots test/vm with fio packed and runs the
# guest's TestBenchEncryption (test/vm/guest/bench_test.go): fio on
#   plain    "nbd map" of a plain image
#   dmcrypt  dm-crypt (cryptsetup, LUKS2, 4096-byte sectors) over a raw "nbd map"
#   ours     "nbd map --encryption-format luks2" (decrypted in our server)
# 4 KiB random write/read QD16, 1 MiB sequential write/read QD8, SECONDS
# (default 15) each, with IOPS, MiB/s and CPU per op (whole guest and our
# server alone). Not a test: under TCG (no KVM) the absolute numbers are the
# emulator's; the ratios and CPU per op are what to read.
#   bench/vm-encryption.sh pacific 15
# Env: VM_CACHE (default /var/tmp/gorbd/vm-bench), VM_ACCEL, VM_MEM (1024).
set -euo pipefail
cd "$(dirname "$0")/.."
CLUSTER=${1:-pacific}
SECS=${2:-15}
envf=$(mktemp)
trap 'rm -f "$envf"' EXIT
printf 'GORBD_VM_BENCH=1\nGORBD_VM_BENCH_SECS=%s\n' "$SECS" >"$envf"
VM_BENCH=1 VM_NET=1 VM_CEPH_CLUSTER=$CLUSTER VM_ENV_FILE=$envf \
	VM_MEM=${VM_MEM:-1024} VM_CACHE=${VM_CACHE:-/var/tmp/gorbd/vm-bench} \
	VM_RUN='^TestBenchEncryption$' VM_TIMEOUT=${VM_TIMEOUT:-3000} \
	bash test/vm/run.sh
