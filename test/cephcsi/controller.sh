#!/usr/bin/env bash
# Runs ceph-csi's RBD controller (the oracle built by build.sh) against a test
# cluster, isolated from the host's /etc: ceph-csi reads and writes fixed
# paths (/etc/ceph/ceph.conf and keyring, /etc/ceph-csi-config/config.json,
# /etc/ceph-csi-encryption-kms-config/config.json, /tmp/csi/keys), so it runs
# in a private mount namespace where those are bind mounts of WORK's files.
#
#   test/cephcsi/controller.sh start WORK   # WORK/config.json (and WORK/kms.json) must exist
#   test/cephcsi/controller.sh stop WORK
#
# The endpoint is unix://WORK/csi.sock; the log is WORK/cephcsi.log.
# CEPHCSI (default /var/tmp/ceph-csi-bin/cephcsi) is the binary;
# CEPHCSI_ARGS adds flags (e.g. --instanceid).
set -euo pipefail
op=${1:?usage: controller.sh start|stop WORK}
work=$(realpath -m -- "${2:?usage: controller.sh start|stop WORK}")
bin=${CEPHCSI:-/var/tmp/ceph-csi-bin/cephcsi}

case $op in
start)
  [[ -x $bin ]] || { echo "controller.sh: no cephcsi binary at $bin (test/cephcsi/build.sh)" >&2; exit 1; }
  [[ -f $work/config.json ]] || { echo "controller.sh: $work/config.json missing" >&2; exit 1; }
  if [[ -f $work/cephcsi.pid ]] && kill -0 "$(cat "$work/cephcsi.pid")" 2>/dev/null; then
    echo "controller.sh: already running (pid $(cat "$work/cephcsi.pid"))" >&2; exit 1
  fi
  # ceph-csi's image ships /tmp/csi/keys; it writes key files there.
  mkdir -p "$work/etc-ceph" "$work/csi-config" "$work/kms-config" "$work/tmp/csi/keys"
  cp "$work/config.json" "$work/csi-config/config.json"
  [[ -f $work/kms.json ]] && cp "$work/kms.json" "$work/kms-config/config.json"
  # Empty mount points on the host; nothing is ever written into them there.
  mkdir -p /etc/ceph /etc/ceph-csi-config /etc/ceph-csi-encryption-kms-config
  rm -f "$work/csi.sock" "$work/csi-addons.sock"
  # shellcheck disable=SC2016
  setsid unshare -m --propagation private bash -c '
    set -e
    w=$1; shift
    mount --bind "$w/etc-ceph" /etc/ceph
    mount --bind "$w/csi-config" /etc/ceph-csi-config
    mount --bind "$w/kms-config" /etc/ceph-csi-encryption-kms-config
    mount --bind "$w/tmp" /tmp
    exec "$@"' _ "$work" "$bin" --type=rbd --controllerserver=true \
      --endpoint="unix://$work/csi.sock" --csi-addons-endpoint="unix://$work/csi-addons.sock" \
      --nodeid=ccsi-oracle --drivername=rbd.csi.ceph.com --setmetadata=true \
      --logtostderr -v=5 ${CEPHCSI_ARGS:-} >"$work/cephcsi.log" 2>&1 </dev/null &
  echo $! >"$work/cephcsi.pid"
  for _ in $(seq 100); do
    [[ -S $work/csi.sock ]] && { echo "cephcsi controller pid $(cat "$work/cephcsi.pid") on unix://$work/csi.sock"; exit 0; }
    kill -0 "$(cat "$work/cephcsi.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "controller.sh: cephcsi did not start; log:" >&2; tail -20 "$work/cephcsi.log" >&2; exit 1
  ;;
stop)
  [[ -f $work/cephcsi.pid ]] || exit 0
  pid=$(cat "$work/cephcsi.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$work/cephcsi.pid"
  ;;
*) echo "usage: controller.sh start|stop WORK" >&2; exit 2 ;;
esac
