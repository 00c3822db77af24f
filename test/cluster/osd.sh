#!/bin/bash
# osd.sh NAME kill|stop|start|status OSDID: fault injection on ONE OSD of the
# named cluster (for the fault tests, e.g. `osd.sh pacific-osd3 kill 1`).
#   kill    SIGKILL (kill -9) the OSD, then wait until the map marks it down
#   stop    SIGTERM, wait for the process to exit and the map to mark it down
#   start   start it again (same data dir, same keyring), wait until it is up
#   status  exit 0 if the process runs, 3 if not
# Waits are bounded by WAIT_S (default 60) seconds. NOWAIT=1 skips the map
# waits. Only a pid from NAME/run/osd.ID.pid whose command line names
# NAME/ceph.conf is ever signalled.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -eq 3 ] || { echo "usage: $0 NAME kill|stop|start|status OSDID" >&2; exit 2; }
NAME=$1 OP=$2 ID=$3
cluster_profile "$NAME"
D=$CLUSTERS/$NAME
if ! [[ $ID =~ ^[0-9]+$ ]] || [ ! -d "$D/osd.$ID" ]; then echo "$NAME has no osd '$ID'" >&2; exit 2; fi
ROOT=""; [ -z "$SUITE" ] || ROOT=$(chroot_root "$SUITE")
PIDF=$D/run/osd.$ID.pid
WAIT_S=${WAIT_S:-60}

# osd_state: prints "up" or "down" as the monitors' map says, or nothing.
osd_state() {
  timeout 20 bash -c "$(declare -f inroot cephrun); ROOT='$ROOT' D='$D'; cephrun ceph -c '$D/ceph.conf' --connect-timeout 10 osd dump -f json" 2>/dev/null \
    | grep -o "{\"osd\":$ID,\"uuid\":\"[^\"]*\",\"up\":[01]" | sed -e 's/.*"up":1$/up/' -e 's/.*"up":0$/down/' || true
}
wait_state() {
  [ "${NOWAIT:-0}" = 1 ] && return 0
  local want=$1 deadline=$(( $(date +%s) + WAIT_S )) st
  while :; do
    st=$(osd_state)
    [ "$st" = "$want" ] && { echo "osd.$ID is $want in the osdmap"; return 0; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "osd.$ID not $want after ${WAIT_S}s (map says '${st:-?}')" >&2; return 1; }
    sleep 0.3
  done
}
case "$OP" in
  kill)
    pid=$(pid_is_ours "$PIDF") || { echo "osd.$ID is not running" >&2; exit 1; }
    kill -KILL "$pid"
    for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ ! -d "/proc/$pid" ] || { echo "osd.$ID (pid $pid) survived SIGKILL" >&2; exit 1; }
    echo "killed osd.$ID (pid $pid) with SIGKILL"
    wait_state down ;;
  stop)
    pid_is_ours "$PIDF" >/dev/null || { echo "osd.$ID is not running" >&2; exit 1; }
    stop_pidfiles 30 "$PIDF"
    wait_state down ;;
  start)
    if pid=$(pid_is_ours "$PIDF"); then echo "osd.$ID already running (pid $pid)"; exit 0; fi
    cephrun ceph-osd -c "$D/ceph.conf" -i "$ID" --keyring "$D/osd.$ID/keyring" 2>> "$D/log/osd.$ID.start.err"
    echo "started osd.$ID (pid $(cat "$PIDF" 2>/dev/null || echo '?'))"
    wait_state up ;;
  status)
    if pid=$(pid_is_ours "$PIDF"); then echo "osd.$ID running (pid $pid)"; else echo "osd.$ID stopped"; exit 3; fi ;;
  *) echo "usage: $0 NAME kill|stop|start|status OSDID" >&2; exit 2 ;;
esac
