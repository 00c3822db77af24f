#!/bin/bash
# k8s-e2e.sh: the Kubernetes suites alone (`make k8s-e2e`): the Go module
# proxy builds of the Kubernetes binaries (build-bins.sh), the container
# images, the node VM's disk (test/vm/node/build.sh), then `go test
# ./test/e2e/`: TestKubernetesE2E (control plane + controller plugin), and
# on one cluster with the node VM's kubelet, TestPods (the Pod flows) and
# the upstream External Storage suite (TestUpstream).
#
# Env: GORBD_E2E_RUN   go test -run pattern (default: every test)
#      GORBD_E2E_UPSTREAM  upstream External Storage set: full (default) or ci
#      GORBD_E2E_BINS / GORBD_E2E_NODE  use these instead of building
#      SKIP_DEPS=1     do not run test/deps.sh and test/tools.sh
#      VM_MEM          node VM memory in MiB (default 3072)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CGO_ENABLED=0 PATH=/usr/local/go/bin:$HOME/go/bin:$PATH
export GORBD_REQUIRE_CLUSTERS=1
T0=$(date +%s)
step() { echo "=== [k8s-e2e $(( $(date +%s) - T0 ))s] $*"; }

if [ "${SKIP_DEPS:-0}" != 1 ]; then
	bash test/deps.sh
	bash test/tools.sh
fi
if ! bash test/cluster/check.sh pacific > /dev/null 2>&1; then
	step "starting the pacific test cluster"
	bash test/cluster/start.sh pacific
fi
if [ -z "${GORBD_E2E_BINS:-}" ]; then
	step "Kubernetes binaries (test/e2e/build-bins.sh)"
	GORBD_E2E_BINS=$(bash test/e2e/build-bins.sh | tail -n 1)
fi
export GORBD_E2E_BINS
if [ -z "${GORBD_E2E_NODE:-}" ]; then
	step "container images and the node VM disk"
	GORBD_E2E_NODE=$(bash test/e2e/node-image.sh "$GORBD_E2E_BINS" | tail -n 1)
fi
export GORBD_E2E_NODE
export GORBD_E2E_UPSTREAM=${GORBD_E2E_UPSTREAM:-full}
make -s build
step "go test ./test/e2e/"
GORBD_BIN=$PWD/bin/csi-gorbd go test -count=1 -timeout 120m -v -run "${GORBD_E2E_RUN:-.}" ./test/e2e/ 2>&1 | tee /var/tmp/gorbd/k8s-e2e.log
rc=${PIPESTATUS[0]}
# the upstream run's "upstream: N passed, N failed, N skipped" line comes last
grep -E '^(k8s-setup|k8s-flow):' /var/tmp/gorbd/k8s-e2e.log || true
grep -E '^upstream:' /var/tmp/gorbd/k8s-e2e.log || true
step "done (go test exit $rc)"
exit "$rc"
