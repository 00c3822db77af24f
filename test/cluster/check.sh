#!/bin/bash
# check.sh NAME: print the version and state of a running test cluster using
# that cluster's own Ceph CLI (CEPH_CLI from cluster.env): `ceph version`,
# `ceph -s` and `rados lspools`. Exits non-zero if the cluster is not usable.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 NAME" >&2; exit 2; }
cluster_profile "$1"
ENV=$CLUSTERS/$1/cluster.env
[ -f "$ENV" ] || { echo "$1: not running (no $ENV)" >&2; exit 1; }
# cluster.env is KEY=VALUE with only CEPH_CLI quoted; read it without eval.
CEPH_CLI=""; CEPH_CONF=""; CEPH_VERSION=""; CEPH_RELEASE=""; CEPH_MON_V2=""
while IFS='=' read -r k v; do
  case "$k" in CEPH_CLI|CEPH_CONF|CEPH_VERSION|CEPH_RELEASE|CEPH_MON_V2) v=${v#\"}; printf -v "$k" '%s' "${v%\"}";; esac
done < "$ENV"
read -ra CLI <<<"$CEPH_CLI"
echo "== $1: $CEPH_VERSION $CEPH_RELEASE, mons $CEPH_MON_V2, cli: ${CEPH_CLI:-host}"
"${CLI[@]}" ceph --version
"${CLI[@]}" ceph -c "$CEPH_CONF" --connect-timeout 20 versions
"${CLI[@]}" ceph -c "$CEPH_CONF" --connect-timeout 20 -s
echo "pools:"
"${CLI[@]}" rados -c "$CEPH_CONF" lspools
