#!/bin/bash
# bench/k8s-pods.sh [N]: the Pod flows at scale on the Kubernetes node VM of
# test/e2e: N (default 100) PersistentVolumeClaims with a Pod each, created
# at once; prints PVC created -> Pod Running p50/p95/max and the time until
# all run, the node plugin's RSS and threads with N volumes staged (and idle
# before), the time until every Pod is gone and until the pool is empty.
# Not a test: the node is a TCG VM (2 vCPUs) on a shared host, so the
# numbers are an upper bound of what a real node does.
#   Env: VM_MEM (MiB, default 6144: every Pod costs a containerd shim),
#        GORBD_E2E_PODS_PARALLEL (how many start at once, default all N),
#        and test/e2e/k8s-e2e.sh's (GORBD_E2E_BINS, GORBD_E2E_NODE, SKIP_DEPS).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
export GORBD_E2E_SCALE=$N GORBD_E2E_RUN='^TestPodScale$' VM_MEM=${VM_MEM:-6144}
bash test/e2e/k8s-e2e.sh | grep -E '^(k8s-setup|k8s-scale):|^(--- |ok|FAIL)'
