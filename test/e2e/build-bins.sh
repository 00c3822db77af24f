#!/bin/bash
# build-bins.sh: build every binary the Kubernetes e2e suite needs from the Go
# module proxy, into a cache directory keyed by the pinned versions, and print
# that directory on the last line of stdout.
#
#   bash test/e2e/build-bins.sh            # -> /var/tmp/gorbd/k8s/<key>/bin
#   GORBD_K8S_CACHE=/some/dir bash ...     # other cache root
#
# Cold (empty module and build cache): about 25 minutes on 2 cores and 3 GB
# RSS at peak (e2e.test); see README.md for measured times. When the keyed
# directory is complete it returns at once.
#
# What and why (see README.md for the longer story):
#   tools/k8s   wrapper module: k8s.io/kubernetes v1.37.1 with its staging
#               modules replaced by v0.37.1, external-snapshotter v8.7.0 and
#               external-resizer v2.3.0 sharing one k8s.io/* version. The same
#               module builds the node side (kubelet, kube-scheduler), the
#               upstream suite (e2e.test via `go test -c`, the ginkgo CLI of
#               the ginkgo version linked into e2e.test) and agnhost, the
#               e2e framework's test image binary (with its VERSION).
#   csi-provisioner v6.3.0 is built inside its own module directory (its
#               go.mod has replace directives, v6.4.0 needs a dependency the
#               proxy refuses, and v6.3.0 does not compile against 0.37).
#   csi-attacher v4.13.0 likewise in its own module directory (replace
#               directives; it keeps its own k8s.io 0.37.0).
#   tools/etcd  etcd 3.7.3 (Debian's 3.4 lacks RequestWatchProgress).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0
KV=v1.37.1
PROVISIONER=github.com/kubernetes-csi/external-provisioner/v6@v6.3.0
ATTACHER=github.com/kubernetes-csi/external-attacher/v4@v4.13.0
KEY=$(cat "$HERE/build-bins.sh" "$HERE/tools/k8s/go.sum" "$HERE/tools/etcd/go.sum" | sha256sum | cut -c1-16)
OUT=${GORBD_K8S_CACHE:-/var/tmp/gorbd/k8s}/$KEY/bin
BINS=(etcd kube-apiserver kube-controller-manager kubectl csi-provisioner csi-snapshotter snapshot-controller csi-resizer
  kube-scheduler kubelet agnhost e2e.test ginkgo csi-attacher)

complete() { for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if complete; then echo "$OUT"; exit 0; fi

T0=$(date +%s)
t() { local s; s=$(date +%s); "$@"; echo "build-bins: $(( $(date +%s) - s ))s: $*" >&2; }
TMP="$OUT.tmp.$$"
rm -rf "$TMP"; mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
# Version ldflags: without them the apiserver reports v0.0.0-master.
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF="$LDF -X $p.gitVersion=$KV -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitTreeState=clean"
done

cd "$HERE/tools/etcd"
t go build -trimpath -ldflags "-s -w" -o "$TMP/etcd" go.etcd.io/etcd/server/v3

cd "$HERE/tools/k8s"
t go build -trimpath -ldflags "$LDF" -o "$TMP/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl \
  github.com/kubernetes-csi/external-snapshotter/v8/cmd/csi-snapshotter \
  github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller \
  github.com/kubernetes-csi/external-resizer/v2/cmd/csi-resizer
# The node (kubelet, static like everything here: it runs in the VM's guest)
# and the scheduler that places Pods on it.
t go build -trimpath -ldflags "$LDF" -o "$TMP/" \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet
# The upstream External Storage suite and its runner. The ginkgo CLI comes
# from this module too, so it is the ginkgo version e2e.test links.
t go test -c -vet=off -trimpath -ldflags "$LDF" -o "$TMP/e2e.test" k8s.io/kubernetes/test/e2e
t go build -trimpath -ldflags "-s -w" -o "$TMP/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
# agnhost reports the version the e2e image tag carries.
AGNHOST_DIR=$(go list -f '{{.Dir}}' k8s.io/kubernetes/test/images/agnhost)
t go build -trimpath -ldflags "-s -w -X main.Version=$(cat "$AGNHOST_DIR/VERSION")" -o "$TMP/agnhost" \
  k8s.io/kubernetes/test/images/agnhost
# The VolumeSnapshot CRDs (6 incl. group snapshots; snapshot-controller lists
# those too) ship in the snapshotter's client module.
CRD=$(go list -m -f '{{.Dir}}' github.com/kubernetes-csi/external-snapshotter/client/v8)/config/crd
mkdir -p "$TMP/crd" && cp "$CRD"/*.yaml "$TMP/crd/" && rm -f "$TMP/crd/kustomization.yaml"
chmod -R u+w "$TMP/crd"

PDIR=$(go mod download -json "$PROVISIONER" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cd "$PDIR"
t go build -trimpath -ldflags "-s -w" -o "$TMP/csi-provisioner" ./cmd/csi-provisioner

ADIR=$(go mod download -json "$ATTACHER" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cd "$ADIR"
t go build -trimpath -ldflags "-s -w" -o "$TMP/csi-attacher" ./cmd/csi-attacher

rm -rf "$OUT"; mv "$TMP" "$OUT"; trap - EXIT
echo "build-bins: all built in $(( $(date +%s) - T0 ))s into $OUT" >&2
echo "$OUT"
