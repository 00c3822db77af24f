#!/bin/bash
# build-bins.sh: build every binary the Kubernetes e2e suite needs from the Go
# module proxy, into a cache directory keyed by the pinned versions, and print
# that directory on the last line of stdout.
#
#   bash test/e2e/build-bins.sh            # -> /var/tmp/gorbd/k8s/<key>/bin
#   GORBD_K8S_CACHE=/some/dir bash ...     # other cache root
#
# Cold (empty module and build cache): about 12 minutes on 2 cores and 2.6 GB
# RSS at peak. When the keyed directory is complete it returns at once.
#
# What and why (see README.md for the longer story):
#   tools/k8s   wrapper module: k8s.io/kubernetes v1.37.1 with its staging
#               modules replaced by v0.37.1, external-snapshotter v8.7.0 and
#               external-resizer v2.3.0 sharing one k8s.io/* version.
#   csi-provisioner v6.3.0 is built inside its own module directory (its
#               go.mod has replace directives, v6.4.0 needs a dependency the
#               proxy refuses, and v6.3.0 does not compile against 0.37).
#   tools/etcd  etcd 3.7.3 (Debian's 3.4 lacks RequestWatchProgress).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PATH=/usr/local/go/bin:$PATH CGO_ENABLED=0
KV=v1.37.1
PROVISIONER=github.com/kubernetes-csi/external-provisioner/v6@v6.3.0
KEY=$(cat "$HERE/build-bins.sh" "$HERE/tools/k8s/go.sum" "$HERE/tools/etcd/go.sum" | sha256sum | cut -c1-16)
OUT=${GORBD_K8S_CACHE:-/var/tmp/gorbd/k8s}/$KEY/bin
BINS=(etcd kube-apiserver kube-controller-manager kubectl csi-provisioner csi-snapshotter snapshot-controller csi-resizer)

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
# The VolumeSnapshot CRDs (6 incl. group snapshots; snapshot-controller lists
# those too) ship in the snapshotter's client module.
CRD=$(go list -m -f '{{.Dir}}' github.com/kubernetes-csi/external-snapshotter/client/v8)/config/crd
mkdir -p "$TMP/crd" && cp "$CRD"/*.yaml "$TMP/crd/" && rm -f "$TMP/crd/kustomization.yaml"
chmod -R u+w "$TMP/crd"

PDIR=$(go mod download -json "$PROVISIONER" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cd "$PDIR"
t go build -trimpath -ldflags "-s -w" -o "$TMP/csi-provisioner" ./cmd/csi-provisioner

rm -rf "$OUT"; mv "$TMP" "$OUT"; trap - EXIT
echo "build-bins: all built in $(( $(date +%s) - T0 ))s into $OUT" >&2
echo "$OUT"
