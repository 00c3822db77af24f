#!/usr/bin/env bash
# The csi-gorbd demo: starts a local single-node Ceph cluster (Pacific, on
# 127.0.0.1, cephx on) and drives it with the csi-gorbd binary - no librados,
# no ceph/rbd CLI in the path of the commands shown.
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
say "csi-gorbd osd map rbd demo-object    (placement computed by our CRUSH)"
$B "${G[@]}" osd map rbd demo-object

IMG=demo-$$
TMP=$(mktemp -d)
NBDPID=
cleanup() {
  [ -n "$NBDPID" ] && kill "$NBDPID" 2>/dev/null
  $B "${G[@]}" rbd snap rm "rbd/$IMG@s1" >/dev/null 2>&1
  $B "${G[@]}" rbd rm "rbd/$IMG" >/dev/null 2>&1
  rm -rf "$TMP"
  return 0
}
trap cleanup EXIT
say "csi-gorbd rbd create rbd/$IMG --size 64   (default features: layering, exclusive-lock, object-map, fast-diff, deep-flatten)"
$B "${G[@]}" rbd create "rbd/$IMG" --size 64
$B "${G[@]}" rbd info "rbd/$IMG"
head -c 8M /dev/urandom > "$TMP/data"
say "csi-gorbd rbd rm rbd/$IMG; csi-gorbd rbd import 8MiB-of-random-data rbd/$IMG; snap create; export @s1"
$B "${G[@]}" rbd rm "rbd/$IMG"
$B "${G[@]}" rbd import "$TMP/data" "rbd/$IMG"
$B "${G[@]}" rbd snap create "rbd/$IMG@s1"
$B "${G[@]}" rbd snap ls "rbd/$IMG"
$B "${G[@]}" rbd export "rbd/$IMG@s1" "$TMP/out"
sha256sum "$TMP/data" "$TMP/out"
cmp "$TMP/data" "$TMP/out" && echo "byte-identical"

say "csi-gorbd nbd serve rbd/$IMG --listen unix:$TMP/nbd.sock   (in-process NBD server over the image)"
$B "${G[@]}" nbd serve "rbd/$IMG" --listen "unix:$TMP/nbd.sock" --name "$IMG" &
NBDPID=$!
for _ in $(seq 50); do [ -S "$TMP/nbd.sock" ] && break; sleep 0.1; done
nbdinfo "nbd+unix:///$IMG?socket=$TMP/nbd.sock" | sed -n '1,12p'
nbdcopy "nbd+unix:///$IMG?socket=$TMP/nbd.sock" "$TMP/via-nbd"
head -c 8M "$TMP/via-nbd" | cmp - "$TMP/data" && echo "nbdcopy read back the imported data byte-identically"
kill $NBDPID; wait $NBDPID 2>/dev/null || true; NBDPID=

say "csi-gorbd rbd bench rbd/$IMG --io-type write --io-size 4K --io-threads 16 --io-total 16M"
$B "${G[@]}" rbd bench "rbd/$IMG" --io-type write --io-size 4K --io-threads 16 --io-total 16M --io-pattern rand | tail -2
echo
echo "demo done; the cluster keeps running (stop it with: bash test/cluster/stop.sh pacific)"
