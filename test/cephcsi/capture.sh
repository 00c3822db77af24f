#!/usr/bin/env bash
# Captures what a real ceph-csi RBD controller writes, for the replay tests:
# builds nothing itself (test/cephcsi/build.sh does), creates fresh pools on a
# test cluster, starts the oracle (controller.sh), drives it through the CSI
# API (capture/main.go) and writes testdata/<version>/state.json.
#
#   test/cephcsi/capture.sh [CLUSTER]     # default pacific
#
# CEPHCSI=binary (default /var/tmp/ceph-csi-bin/cephcsi; its .version file
# names the ceph-csi release and commit). POOL=prefix (default ccsi-cc): the
# pools POOL, POOL-data and POOL-topo are deleted and recreated. KEEP=1 keeps
# the controller and pools afterwards. Not part of CI (no ceph-csi there).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cluster=${1:-pacific}
bin=${CEPHCSI:-/var/tmp/ceph-csi-bin/cephcsi}
pool=${POOL:-ccsi-cc}
ns=csi-ns
# shellcheck disable=SC1090
. "${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/$cluster/cluster.env"
C=(-c "$CEPH_CONF" -k "$CEPH_KEYRING")
version=$(jq -r .cephcsi_version "$bin.version")
work=/var/tmp/gorbd/cephcsi/capture-$cluster
out=$here/testdata/$version/state.json

bash "$here/controller.sh" stop "$work" || true
for p in "$pool" "$pool-data" "$pool-topo"; do
  ceph "${C[@]}" osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
  ceph "${C[@]}" osd pool create "$p" 8 >/dev/null
  rbd "${C[@]}" pool init "$p"
done
rbd "${C[@]}" namespace create "$pool/$ns"

rm -rf "$work"; mkdir -p "$work"
cat >"$work/config.json" <<J
[
  {"clusterID": "$CEPH_FSID", "monitors": ["$CEPH_MON_V1"]},
  {"clusterID": "ccsi-ns-cluster", "monitors": ["$CEPH_MON_V1"], "rbd": {"radosNamespace": "$ns"}}
]
J
cat >"$work/kms.json" <<J
{"secrets-metadata": {"encryptionKMSType": "metadata"}}
J
# --clustername makes ceph-csi record csi.ceph.com/cluster/name in image metadata.
CEPHCSI=$bin CEPHCSI_ARGS="--clustername=ccsi-k8s ${CEPHCSI_ARGS:-}" bash "$here/controller.sh" start "$work"
trap '[ "${KEEP:-0}" = 1 ] || bash "$here/controller.sh" stop "$work"' EXIT
args=$(tr '\0' ' ' <"/proc/$(cat "$work/cephcsi.pid")/cmdline" | cut -d' ' -f2-)
start=$(date +%s)
(cd "$root" && go run ./test/cephcsi/capture -endpoint "unix://$work/csi.sock" \
  -conf "$CEPH_CONF" -keyring "$CEPH_KEYRING" -cluster "$cluster" -out "$out" \
  -oracle "$bin.version" -config "$work/config.json" -kms-config "$work/kms.json" \
  -cluster-id "$CEPH_FSID" -ns-cluster-id ccsi-ns-cluster -pool "$pool" -data-pool "$pool-data" \
  -topology-pool "$pool-topo" -namespace "$ns" -driver-args "$args")
echo "captured $out in $(( $(date +%s) - start ))s (controller log: $work/cephcsi.log)"
# The example classes' parameter keys, from the checkout the binary was built from.
src=${CEPHCSI_SRC:-/var/tmp/ceph-csi-src}
if [[ -f $src/build.env && $(. "$src/build.env" && echo "$CSI_IMAGE_VERSION") == "$version" ]]; then
  (cd "$root" && go run ./test/cephcsi/examples -src "$src" -version "$version" \
    -commit "$(jq -r .cephcsi_commit "$bin.version")" -out "$here/testdata/$version/examples-rbd-parameters.json")
  echo "wrote $here/testdata/$version/examples-rbd-parameters.json"
else
  echo "no $version checkout at CEPHCSI_SRC=$src: examples-rbd-parameters.json not regenerated" >&2
fi
