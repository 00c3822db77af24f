#!/usr/bin/env bash
# The whole test suite, as CI runs it (`make test`):
#   1. install host packages (test/deps.sh)
#   2. start every throw-away Ceph cluster (Pacific, 3-mon Pacific, Reef,
#      Tentacle with AES and with aes256k keys, a secure-only and an auth-none mon)
#   3. go vet, gofmt, build the static binary
#   4. go test ./... (unit + integration against the real clusters; a missing
#      cluster FAILS the run because GORBD_REQUIRE_CLUSTERS=1), then go test
#      -race over the unit tests and over rbd's integration tests on Pacific
#   5. a short fuzzing burst on every decoder
#   6. test/e2e: a Kubernetes control plane with the chart's controller, a kubelet node in a qemu VM
#      running the chart's node DaemonSet, Pods on csi-gorbd volumes
#   7. the kernel NBD suite inside a qemu VM
# Clusters are stopped on exit unless KEEP_CLUSTERS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
export GORBD_REQUIRE_CLUSTERS=1
T0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - T0 ))s] $*"; }

step "host packages and Go tools (helm)"
bash test/deps.sh
bash test/tools.sh

# The Kubernetes binaries for test/e2e take ~12 min to build from nothing; build them in the
# background while the clusters start and `go test` runs (mostly waiting on Ceph), then wait.
mkdir -p /var/tmp/gorbd
E2E_LOG=/var/tmp/gorbd/e2e-build-bins.log
bash test/e2e/build-bins.sh > "$E2E_LOG.out" 2> "$E2E_LOG" &
E2E_BUILD=$!
# The node VM's root filesystem for the Pod tests (debootstrap of containerd, runc, the CNI plugins:
# ~2-3 min, mostly downloads), cached in /var/tmp/gorbd/vm/node like the other VM artefacts.
NODE_LOG=/var/tmp/gorbd/node-rootfs.log
bash test/vm/node/build.sh --rootfs > "$NODE_LOG" 2>&1 &
NODE_ROOTFS=$!

step "ceph clusters"
if [ "${KEEP_CLUSTERS:-0}" != 1 ]; then trap 'bash test/cluster/stop-all.sh >/dev/null 2>&1 || true' EXIT; fi
bash test/cluster/start-all.sh

step "go vet + build"
go vet ./...
unformatted=$(gofmt -l $(git ls-files "*.go")); if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
make -s build
./bin/csi-gorbd version

step "go test"
go test -count=1 -timeout 50m ./...

step "go test -race: unit tests, and rbd against pacific"
# The race detector needs cgo, so only these test binaries are built with
# CGO_ENABLED=1 (the shipped binary stays static). The unit pass points
# GORBD_CLUSTERS nowhere, without CI/GORBD_REQUIRE_CLUSTERS, so that the
# integration tests (all run in the step above) skip instead of failing.
env -u CI -u GORBD_REQUIRE_CLUSTERS GORBD_CLUSTERS=/nonexistent CGO_ENABLED=1 go test -race -count=1 -timeout 20m ./...
CGO_ENABLED=1 go test -race -count=1 -timeout 20m -run '/pacific$' ./rbd/

step "kubernetes e2e (test/e2e: control plane + CSI sidecars + controller plugin + pacific)"
# build-bins.sh builds etcd, kube-apiserver, kube-controller-manager, kubectl and the sidecars from the
# Go module proxy (~12 min cold, cached in /var/tmp/gorbd/k8s by version); GORBD_E2E_BINS makes the
# suite run (without it the package skips, as in the `go test ./...` above).
if ! wait "$E2E_BUILD"; then tail -n 50 "$E2E_LOG"; echo "test/e2e/build-bins.sh failed"; exit 1; fi
E2E_BINS=$(tail -n 1 "$E2E_LOG.out")
# The Kubernetes node: the node VM's disk (Debian rootfs + kubelet + the container images the chart and
# the upstream suite run, imported into containerd; cached by content). With GORBD_E2E_NODE the suite
# also runs TestPods (Pods on the VM's kubelet: the chart's node DaemonSet, the Pod flows).
if ! wait "$NODE_ROOTFS"; then tail -n 50 "$NODE_LOG"; echo "test/vm/node/build.sh --rootfs failed"; exit 1; fi
E2E_NODE=$(bash test/e2e/node-image.sh "$E2E_BINS" | tail -n 1)
GORBD_E2E_BINS=$E2E_BINS GORBD_E2E_NODE=$E2E_NODE GORBD_BIN=$PWD/bin/csi-gorbd \
  go test -count=1 -timeout 75m -v ./test/e2e/ 2>&1 | tee /var/tmp/gorbd/e2e.log
grep -E '^(k8s-setup|k8s-flow|upstream):' /var/tmp/gorbd/e2e.log || true

step "fuzz"
FUZZTIME=${FUZZTIME:-5s} bash test/fuzz.sh

if [ -x test/vm/run.sh ] || [ -f test/vm/run.sh ]; then
  step "kernel nbd suite in a qemu VM"
  # VM_NET=1: the guest reaches the pacific cluster (RBD restart test)
  # VM_TIMEOUT: the suite's qemu budget (TestCSIFence alone is 4-8 min
  # under TCG); only a hung guest gets near it.
  VM_NET=1 VM_TIMEOUT=${VM_TIMEOUT:-2400} bash test/vm/run.sh
fi

step "done in $(( $(date +%s) - T0 ))s"
