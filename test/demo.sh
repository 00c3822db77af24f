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
say "csi-gorbd rbd image-meta set; snap protect/unprotect; rename there and back   (rbd's arguments and output)"
$B "${G[@]}" rbd image-meta set "rbd/$IMG" owner demo
$B "${G[@]}" rbd snap protect "rbd/$IMG@s1" && $B "${G[@]}" rbd snap ls "rbd/$IMG" && $B "${G[@]}" rbd snap unprotect "rbd/$IMG@s1"
$B "${G[@]}" rbd rename "rbd/$IMG" "rbd/$IMG-renamed" && $B "${G[@]}" rbd rename "rbd/$IMG-renamed" "rbd/$IMG"
$B "${G[@]}" rbd image-meta list "rbd/$IMG"

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
# The CSI controller flow through the CSI API: csi-gorbd controller serves
# gRPC on a unix socket; `csi-gorbd csi ...` calls it as the sidecars would.
CSIPID=
trap '[ -n "$CSIPID" ] && kill "$CSIPID" 2>/dev/null; cleanup' EXIT
printf '[{"clusterID":"demo","monitors":["%s"]}]\n' "$CEPH_MON_V2" >"$TMP/clusters.json"
say "csi-gorbd controller --endpoint unix://$TMP/csi.sock --clusters clusters.json --metrics-address 127.0.0.1:0"
$B controller --endpoint "unix://$TMP/csi.sock" --clusters "$TMP/clusters.json" --state-dir "$TMP/state" \
  --instance-id demo --metrics-address 127.0.0.1:0 2>"$TMP/controller.log" &
CSIPID=$!
for _ in $(seq 100); do [ -S "$TMP/csi.sock" ] && break; sleep 0.1; done
C=($B -k "$CEPH_KEYRING" csi --endpoint "unix://$TMP/csi.sock" --user admin)
P=(--param clusterID=demo --param pool=rbd --param volumeNamePrefix="demo-csi-$$-")
"${C[@]}" probe
say "csi create-volume pvc-demo --size 64   (then 8 MiB of data written through the NBD server)"
VOL=$("${C[@]}" create-volume pvc-demo --size 64 "${P[@]}")
echo "volume id: $VOL"
VIMG=${VOL##*.}
$B "${G[@]}" nbd serve "rbd/$VIMG" --listen "unix:$TMP/nbd2.sock" --name "$VIMG" &
NBDPID=$!
for _ in $(seq 50); do [ -S "$TMP/nbd2.sock" ] && break; sleep 0.1; done
nbdcopy "$TMP/data" "nbd+unix:///$VIMG?socket=$TMP/nbd2.sock"
kill $NBDPID; wait $NBDPID 2>/dev/null || true; NBDPID=
say "csi create-snapshot snap-demo VOLUME   (a native RBD snapshot of the image)"
SNAP=$("${C[@]}" create-snapshot snap-demo "$VOL")
echo "snapshot id: $SNAP"
$B "${G[@]}" rbd snap ls "rbd/$VIMG"
say "csi delete-volume VOLUME   (it has a snapshot: the image waits in the trash, no copy made)"
"${C[@]}" delete-volume "$VOL"
$B "${G[@]}" rbd trash ls rbd | grep "demo-csi-$$-" || true
say "csi create-volume pvc-restored --from-snapshot SNAPSHOT --size 128   (a clone v2: no data copied)"
RVOL=$("${C[@]}" create-volume pvc-restored --size 128 --from-snapshot "$SNAP" "${P[@]}")
RIMG=${RVOL##*.}
$B "${G[@]}" rbd info "rbd/$RIMG" | grep -E 'size|parent' || true
$B "${G[@]}" rbd export "rbd/$RIMG" "$TMP/restored" 2>/dev/null
head -c 8M "$TMP/restored" | cmp - "$TMP/data" && echo "restored volume holds the snapshot's data byte-identically"
say "csi expand-volume RESTORED --size 256"
"${C[@]}" expand-volume "$RVOL" --size 256
say "csi delete-snapshot SNAPSHOT   (its clone still reads through it; the data stays until the clone goes)"
"${C[@]}" delete-snapshot "$SNAP"
"${C[@]}" list-snapshots --source "$VOL"
rm -f "$TMP/restored"; $B "${G[@]}" rbd export "rbd/$RIMG" "$TMP/restored" 2>/dev/null
head -c 8M "$TMP/restored" | cmp - "$TMP/data" && echo "restored volume still byte-identical"
say "csi delete-volume RESTORED   (the last user: the trashed source and its snapshot are purged)"
"${C[@]}" delete-volume "$RVOL"
echo "images left: $($B "${G[@]}" rbd ls rbd | grep -c "demo-csi-$$-" || true), trash entries left: $($B "${G[@]}" rbd trash ls rbd | grep -c "demo-csi-$$-" || true)"
MADDR=$(sed -n 's/.*"serving metrics" address="\([^"]*\)".*/\1/p' "$TMP/controller.log" | head -1)
say "curl http://$MADDR/metrics | grep csi_gorbd_grpc_requests_total"
curl -s "http://$MADDR/metrics" | grep '^csi_gorbd_grpc_requests_total'
kill "$CSIPID"; wait "$CSIPID" 2>/dev/null || true; CSIPID=

echo
echo "demo done; the cluster keeps running (stop it with: bash test/cluster/stop.sh pacific)"
