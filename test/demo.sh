#!/usr/bin/env bash
# The csi-gorbd demo: starts a local single-node Ceph cluster (Pacific, on
# 127.0.0.1, cephx on) and drives it with the csi-gorbd binary - no librados,
# no ceph CLI in the path of the commands shown.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 PATH=/usr/local/go/bin:$PATH
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

bash test/deps.sh
bash test/cluster/start.sh pacific
# shellcheck disable=SC1091
. "${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}/pacific/cluster.env"
make -s build
B=./bin/csi-gorbd
G=(-c "$CEPH_CONF" -k "$CEPH_KEYRING")

say "csi-gorbd status"
$B "${G[@]}" status
say "csi-gorbd --ms-mode secure mon-command '{\"prefix\":\"osd pool ls\",\"format\":\"json\"}'"
$B "${G[@]}" --ms-mode secure mon-command '{"prefix":"osd pool ls","format":"json"}'
say "csi-gorbd mon-command '{\"prefix\":\"auth get\",\"entity\":\"client.admin\"}'"
$B "${G[@]}" mon-command '{"prefix":"auth get","entity":"client.admin"}' | sed 's/key = .*/key = <redacted>/'

echo
echo "demo done; the cluster keeps running (stop it with: bash test/cluster/stop.sh pacific)"
