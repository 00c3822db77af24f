#!/bin/bash
# capture.sh CLUSTER: create a few RBD images with the cluster's own `rbd` CLI
# and dump the raw RADOS objects and omap values librbd/cls_rbd wrote, into
# rbd/testdata/<release>/. The unit tests decode these bytes.
#   rbd/testdata/capture.sh pacific   (needs test/cluster/start.sh pacific first)
set -euo pipefail
C=${1:?usage: $0 CLUSTER}
set -a; . "/var/tmp/gorbd/clusters/$C/cluster.env"; set +a
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/$CEPH_RELEASE
TMP=$(mktemp -d /tmp/rbdcap.XXXXXX); chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
cli() { if [ -n "$CEPH_CLI" ]; then eval "$CEPH_CLI" '"$@"'; else command "$@"; fi; }
rbd() { cli rbd -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$CEPH_POOL" "$@"; }
rados() { cli rados -c "$CEPH_CONF" -k "$CEPH_KEYRING" -p "$CEPH_POOL" "$@"; }
P=gorbdcap
rbd rm ${P}clone 2>/dev/null || true
for i in ${P}a ${P}s ${P}t; do
  rbd snap unprotect "$i@s1" 2>/dev/null || true
  rbd snap purge "$i" 2>/dev/null || true
  rbd rm "$i" 2>/dev/null || true
done
for i in $(rbd trash ls | awk -v p="$P" '$2 ~ "^"p {print $1}'); do rbd trash rm "$i" || true; done

# a: default features (layering,exclusive-lock,object-map,fast-diff,deep-flatten)
rbd create --size 100M ${P}a
rbd bench --io-type write --io-size 4096 --io-total 16384 --io-pattern seq ${P}a >/dev/null
rbd snap create ${P}a@s1
rbd snap protect ${P}a@s1
rbd bench --io-type write --io-size 4096 --io-total 4096 --io-pattern rand ${P}a >/dev/null
# s: fancy striping, no object map
rbd create --size 10M --object-size 1M --stripe-unit 64K --stripe-count 4 --image-feature layering,striping ${P}s
# clone of a@s1
rbd clone ${P}a@s1 ${P}clone
rbd image-meta set ${P}clone conf_rbd_cache false
# t: moved to the trash
rbd create --size 8M --image-feature layering ${P}t
rbd trash mv ${P}t

rm -rf "$OUT"; mkdir -p "$OUT"
dumpomap() { # obj dir [key-regex]
  mkdir -p "$OUT/$2"
  rados listomapkeys "$1" | grep -E "${3:-.}" > "$TMP/keys" || true
  while IFS= read -r k; do
    rados getomapval "$1" "$k" "$TMP/v" >/dev/null
    cp "$TMP/v" "$OUT/$2/$k"
  done < "$TMP/keys"
}
dumpobj() { rados get "$1" "$TMP/o"; cp "$TMP/o" "$OUT/$2"; }
for i in a s clone; do
  id=$(rbd info --format json ${P}$i | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  echo "$id" > "$OUT/$i.id"
  rbd info --format json ${P}$i > "$OUT/$i.info.json"
  dumpobj "rbd_id.${P}$i" "$i.rbd_id"
  dumpomap "rbd_header.$id" "$i.header"
  rados listxattr "rbd_header.$id" > "$OUT/$i.header.xattrs" || true
  if rados stat "rbd_object_map.$id" >/dev/null 2>&1; then
    dumpobj "rbd_object_map.$id" "$i.object_map"
    for o in $(rados ls | grep "^rbd_object_map\.$id\." || true); do dumpobj "$o" "$i.object_map.${o##*.}"; done
  fi
  rados ls | grep "^rbd_data\.$id\." | sort > "$OUT/$i.data_objects" || true
done
rbd snap ls --format json ${P}a > "$OUT/a.snaps.json"
ids=$(cat "$OUT"/*.id | paste -sd'|')
dumpomap rbd_directory directory "^(name_${P}|id_($ids)\$)"
rbd trash ls --format json > "$OUT/trash.json"
tid=$(python3 -c 'import json,sys; print([e["id"] for e in json.load(sys.stdin) if e["name"]=="'${P}t'"][0])' < "$OUT/trash.json")
dumpomap rbd_trash trash "^id_$tid\$"
# clone v1 (Pacific): rbd_children keys are binary; record their count only
if rados stat rbd_children >/dev/null 2>&1; then rados listomapkeys rbd_children | wc -l > "$OUT/children.count"; fi
echo "captured into $OUT"
