#!/bin/bash
# mon.sh NAME stop|start|status MONID: stop or start ONE monitor of the named
# cluster (for failover tests, e.g. `mon.sh pacific3 stop a`).
# stop waits until the process is gone and, if the remaining monitors can still
# form a majority, until they have a quorum without MONID. start waits until
# MONID and all other running monitors are in the quorum. Waits are bounded by WAIT_S (default 60) seconds.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -eq 3 ] || { echo "usage: $0 NAME stop|start|status MONID" >&2; exit 2; }
NAME=$1 OP=$2 ID=$3
cluster_profile "$NAME"
D=$CLUSTERS/$NAME
if ! [[ $ID =~ ^[a-z]$ ]] || [ ! -d "$D/mon.$ID" ]; then echo "$NAME has no monitor '$ID'" >&2; exit 2; fi
ROOT=""; [ -z "$SUITE" ] || ROOT=$(chroot_root "$SUITE")
PIDF=$D/run/mon.$ID.pid
# quorum: prints `"quorum_names":[...]` as the monitors see it, or nothing.
quorum() {
  timeout 20 bash -c "$(declare -f inroot cephrun); ROOT='$ROOT' D='$D'; cephrun ceph -c '$D/ceph.conf' --connect-timeout 10 quorum_status -f json" 2>/dev/null \
    | grep -o '"quorum_names":\[[^]]*\]' || true
}
case "$OP" in
  stop)
    if pid_is_ours "$PIDF" >/dev/null; then stop_pidfiles 30 "$PIDF"; else echo "mon.$ID is not running"; rm -f "$PIDF"; fi
    up=0; for f in "$D"/run/mon.*.pid; do pid_is_ours "$f" >/dev/null && up=$((up + 1)); done
    if [ $((2 * up)) -le "$NMON" ]; then echo "$up of $NMON monitors running: no quorum possible"; exit 0; fi
    deadline=$(( $(date +%s) + ${WAIT_S:-60} ))
    while :; do
      q=$(quorum)
      case "$q" in *"\"$ID\""*|"") ;; *) echo "quorum without mon.$ID: ${q#*:}"; break;; esac
      [ "$(date +%s)" -lt "$deadline" ] || { echo "no quorum without mon.$ID after ${WAIT_S:-60}s (${q:-no quorum})" >&2; exit 1; }
      sleep 0.5
    done ;;
  start)
    if pid=$(pid_is_ours "$PIDF"); then echo "mon.$ID already running (pid $pid)"; exit 0; fi
    cephrun ceph-mon -c "$D/ceph.conf" -i "$ID"
    echo "started mon.$ID (pid $(cat "$PIDF" 2>/dev/null || echo '?'))"
    deadline=$(( $(date +%s) + ${WAIT_S:-60} ))
    while :; do
      q=$(quorum)
      # wait for MONID and every other running monitor to be in the quorum
      up=0; for f in "$D"/run/mon.*.pid; do pid_is_ours "$f" >/dev/null && up=$((up + 1)); done
      n=$( (grep -o '"[a-z]"' <<<"${q#*:}" || true) | wc -l)
      case "$q" in *"\"$ID\""*) [ "$n" -lt "$up" ] || { echo "mon.$ID in quorum: ${q#*:}"; break; };; esac
      [ "$(date +%s)" -lt "$deadline" ] || { echo "mon.$ID started but not in quorum after ${WAIT_S:-60}s (${q:-no quorum})" >&2; exit 1; }
      sleep 0.5
    done ;;
  status)
    if pid=$(pid_is_ours "$PIDF"); then echo "mon.$ID running (pid $pid)"; else echo "mon.$ID stopped"; exit 3; fi ;;
  *) echo "usage: $0 NAME stop|start|status MONID" >&2; exit 2 ;;
esac
