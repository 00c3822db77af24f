#!/bin/bash
# upstream/run.sh ci|full: Kubernetes' own External Storage e2e suite
# (e2e.test --storage.testdriver=test/e2e/testdriver.yaml) against the
# running cluster: the control plane, the kubelet node with csi-gorbd's node
# plugin registered, the chart's StorageClass and VolumeSnapshotClass.
#
#   KUBECONFIG=... GORBD_E2E_BINS=... bash test/e2e/upstream/run.sh ci
#
# Sets (see README.md "Upstream External Storage suite"):
#   ci    at least one spec of every testsuite the driver's capabilities
#         enable, run in parallel: about 15 minutes on the TCG node
#   full  every External Storage spec the testdriver enables that is neither
#         [Disruptive] nor [Serial], [Slow] included (make k8s-e2e)
#
# Environment: KUBECONFIG (required), GORBD_E2E_BINS (build-bins.sh output:
# e2e.test, ginkgo, kubectl), GORBD_E2E_PROCS (parallel ginkgo processes,
# default 3), GORBD_E2E_REPORT (report directory, default a new
# /tmp/gorbd-upstream-SET.*), GORBD_E2E_TIMEOUT (ginkgo --timeout, default
# 40m for ci, 150m for full).
#
# Before anything runs it checks that every image the sets use is on every
# node (and is the reference e2e.test itself uses), that the driver is
# registered on every node and that the classes exist, and fails at once
# otherwise. It ends with the JUnit summary's "upstream: N passed, N failed,
# N skipped" line and exits non-zero on any failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
SET=${1:-}
case $SET in ci | full) ;; *) echo "usage: $0 ci|full" >&2; exit 2 ;; esac
: "${KUBECONFIG:?KUBECONFIG must point at the test cluster}"
BINS=${GORBD_E2E_BINS:?GORBD_E2E_BINS must name build-bins.sh output}
for b in e2e.test ginkgo kubectl; do
  [ -x "$BINS/$b" ] || { echo "upstream: $BINS/$b missing (build-bins.sh builds it)" >&2; exit 1; }
done
export PATH=/usr/local/go/bin:$PATH KUBECONFIG
PROCS=${GORBD_E2E_PROCS:-3}
DRIVER_FILE=$REPO/test/e2e/testdriver.yaml
K=("$BINS/kubectl" --request-timeout=30s)
T0=$(date +%s)
log() { echo "[upstream $SET $(( $(date +%s) - T0 ))s] $*" >&2; }
field() { sed -n "s/^ *$1: *//p" "$DRIVER_FILE" | head -n1; }
DRIVER=$(field Name)
SC=$(sed -n '/^StorageClass:/,/^[A-Z]/s/^ *FromExistingClassName: *//p' "$DRIVER_FILE")
VSC=$(sed -n '/^SnapshotClass:/,/^[A-Z]/s/^ *FromExistingClassName: *//p' "$DRIVER_FILE")

# Images the External Storage specs run (k8s.io/kubernetes v1.37.1
# test/e2e/storage; references from test/utils/image/manifest.go), built by
# test/e2e/images/build.sh. pause is the sandbox of every Pod.
IMAGES=(
  registry.k8s.io/pause:3.10.2                               # every Pod's sandbox
  registry.k8s.io/e2e-test-images/busybox:1.37.0-2           # default test image: most specs
  registry.k8s.io/e2e-test-images/agnhost:2.66.1             # subPath (mounttest), ephemeral, Pod helpers
  registry.k8s.io/e2e-test-images/nginx:1.27.0-2             # volumes: should allow exec of files
  registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1    # multiVolume: concurrent access (GNU dd)
)

# The CI set: one or two specs per testsuite the capabilities enable, the
# cheap ones. Each line is a regular expression on the spec's full name.
CI_FOCUS=(
  'Dynamic PV \(default fs\)\] provisioning should provision storage with pvc data source$'
  'Dynamic PV \(default fs\)\] provisioning should provision correct filesystem size when restoring snapshot to larger size pvc'
  'Dynamic PV \(default fs\)\] provisioning should provision storage with snapshot data source \(ROX mode\)'
  'Dynamic PV \(block volmode\)\] provisioning should provision storage with pvc data source$'
  'Dynamic Snapshot \(delete policy\)\] snapshottable .* check restore correctly works after modifying source data, check deletion \(persistent\)'
  'Pre-provisioned Snapshot \(retain policy\)\] snapshottable .* check restore correctly works after modifying source data, check deletion \(persistent\)'
  'Dynamic Snapshot \(delete policy\)\] snapshottable-stress '
  'Dynamic PV \(block volmode\)\] multiVolume should concurrently access the single volume from pods on the same node'
  'Dynamic PV \(xfs\)\] multiVolume should concurrently access the volume and restored snapshot from pods on the same node'
  'Dynamic PV \(default fs\)\(allowExpansion\)\] volume-expand should resize volume when PVC is edited while pod is using it'
  'Dynamic PV \(block volmode\)\(allowExpansion\)\] volume-expand Verify if offline PVC expansion works'
  'Dynamic PV \(block volmode\)\] volumeMode should not mount / map unused volumes in a pod'
  'Dynamic PV \(ext4\)\] volumes should allow exec of files on the volume'
  'Dynamic PV \(block volmode\)\] volumes should store data'
  'Dynamic PV \(default fs\)\] volumeIO should write files of various sizes'
  'Dynamic PV \(default fs\)\] subPath should support existing single file'
  'Dynamic PV \(default fs\)\] fsgroupchangepolicy \(OnRootMismatch\)\[LinuxOnly\], pod created with an initial fsgroup, new pod fsgroup applied to volume contents'
  'Generic Ephemeral-volume \(default fs\) \(late-binding\)\] ephemeral should support expansion of pvcs created for ephemeral pvcs'
  'Generic Ephemeral-volume \(block volmode\) \(late-binding\)\] ephemeral should create read/write inline ephemeral volume'
  'Dynamic PV \(default fs\)\] read-write-once-pod should block a second pod from using an in-use ReadWriteOncePod volume on the same node'
)
# Never run: [Disruptive] specs (they restart the kubelet or the node), and
# "any volume data source", which tests the volume populator machinery with
# the hello-populator and volume-data-source-validator images: their sources
# (kubernetes-csi/lib-volume-populator, volume-data-source-validator) are
# refused by the module proxy, and the driver plays no part beyond an empty
# volume. [Serial] specs run, after the parallel ones, on one process.
SKIP='\[Disruptive\]|provisioning should provision storage with any volume data source'

case $SET in
  ci)
    FOCUS_ARGS=()
    for f in "${CI_FOCUS[@]}"; do FOCUS_ARGS+=(--focus "External Storage \[Driver: $DRIVER\] .*$f"); done
    TIMEOUT=${GORBD_E2E_TIMEOUT:-40m}
    ;;
  full)
    FOCUS_ARGS=(--focus "External Storage \[Driver: $DRIVER\]")
    TIMEOUT=${GORBD_E2E_TIMEOUT:-150m}
    ;;
esac

# ---- preflight: fail now rather than time out in a spec
listed=$("$BINS/e2e.test" --list-images 2>/dev/null)
for i in "${IMAGES[@]}"; do
  grep -qxF "$i" <<<"$listed" || { echo "upstream: $i is not an image e2e.test uses (its list changed: update IMAGES and images/build.sh)" >&2; exit 1; }
done
nodes=$("${K[@]}" get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.unschedulable}{"\n"}{end}' | awk '$2 != "true" {print $1}')
[ -n "$nodes" ] || { echo "upstream: no schedulable node" >&2; exit 1; }
missing=0
for n in $nodes; do
  have=$("${K[@]}" get node "$n" -o jsonpath='{range .status.images[*]}{range .names[*]}{@}{"\n"}{end}{end}')
  for i in "${IMAGES[@]}"; do
    grep -qxF "$i" <<<"$have" || { echo "upstream: node $n lacks image $i (import test/e2e/images/build.sh's archive)" >&2; missing=1; }
  done
  "${K[@]}" get csinode "$n" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null | grep -qw "$DRIVER" ||
    { echo "upstream: $DRIVER is not registered on node $n (CSINode)" >&2; missing=1; }
done
"${K[@]}" get storageclass "$SC" >/dev/null || missing=1
"${K[@]}" get volumesnapshotclass "$VSC" >/dev/null || missing=1
[ $missing -eq 0 ] || exit 1
log "preflight ok: nodes $(echo $nodes), ${#IMAGES[@]} images, classes $SC/$VSC"

R=${GORBD_E2E_REPORT:-$(mktemp -d "/tmp/gorbd-upstream-$SET.XXXXXX")}
mkdir -p "$R"
log "ginkgo -p --procs=$PROCS, report in $R"
set +e
(cd "$R" && "$BINS/ginkgo" -p --procs="$PROCS" "${FOCUS_ARGS[@]}" --skip="$SKIP" --timeout="$TIMEOUT" \
  --no-color --silence-skips --junit-report=junit.xml --output-dir="$R" \
  "$BINS/e2e.test" -- --kubeconfig="$KUBECONFIG" --provider=skeleton --storage.testdriver="$DRIVER_FILE" \
  --kubectl-path="$BINS/kubectl" --report-dir="$R" --minStartupPods=0 --dump-logs-on-failure=false \
  ${GORBD_E2E_EXTRA:-}) > "$R/e2e.log" 2>&1
rc=$?
set -e
log "ginkgo exited $rc after $(( $(date +%s) - T0 ))s; log $R/e2e.log"
if [ ! -s "$R/junit.xml" ]; then
  tail -n 40 "$R/e2e.log" >&2
  echo "upstream: no JUnit report" >&2
  echo "upstream: 0 passed, 1 failed"
  exit 1
fi
src=0
(cd "$REPO" && go run ./test/e2e/upstream/junitsum -skips "$R/junit.xml") > "$R/summary.txt" || src=$?
log "wall $(( $(date +%s) - T0 ))s, $PROCS procs; every skip with its reason: $R/summary.txt"
# Everything but the per-spec skip list; the "upstream: N passed, N failed"
# line comes last.
awk '/^SKIPPED: /{getline; next} {print}' "$R/summary.txt"
[ $rc -eq 0 ] && [ $src -eq 0 ]
