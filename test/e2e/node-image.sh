#!/bin/bash
# node-image.sh BINS_DIR: the node VM's disk for test/e2e with every image
# the suites run already in its containerd. Builds the images with
# test/e2e/images/build.sh (docker-save archives with the upstream names;
# the plugin from this tree, tagged as the chart's appVersion) plus the
# upgrade target of TestPods: a second csi-gorbd image of the same tree,
# tagged <appVersion>-upgrade, whose binary keeps its symbol table (not
# -s -w) so the image differs, then runs test/vm/node/build.sh. Prints the
# node image directory (GORBD_E2E_NODE) on its last stdout line.
#   Env: GORBD_E2E_IMAGES_DIR (default /var/tmp/gorbd/e2e-images)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: $0 BINS_DIR" >&2; exit 2; }
export PATH=/usr/local/go/bin:$PATH GORBD_E2E_BINS=$1
OUT=${GORBD_E2E_IMAGES_DIR:-/var/tmp/gorbd/e2e-images}
T0=$(date +%s)
bash test/e2e/images/build.sh "$OUT/all" >&2
APPVERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' charts/csi-gorbd/Chart.yaml)
mkdir -p "$OUT/upgrade"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$OUT/upgrade/csi-gorbd.bin" ./cmd/csi-gorbd
GORBD_IMAGES=csi-gorbd GORBD_BIN=$OUT/upgrade/csi-gorbd.bin CSI_GORBD_IMAGES=ghcr.io/csi-gorbd/csi-gorbd:$APPVERSION-upgrade \
	bash test/e2e/images/build.sh "$OUT/upgrade" >&2
rm -f "$OUT/upgrade/csi-gorbd.bin"
echo "node-image: images in $(( $(date +%s) - T0 ))s" >&2
bash test/vm/node/build.sh "$1" "$OUT/all" "$OUT/upgrade"
