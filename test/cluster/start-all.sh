#!/bin/bash
# start-all.sh [NAME...]: start the whole test bed (default: all clusters in
# ALL_CLUSTERS of lib.sh), building the reef/tentacle chroots as needed.
#
# The chroot builds (mostly download and dpkg) run in parallel in the
# background while the host-binary Pacific clusters start one after another;
# each chroot cluster starts as soon as its chroot is ready. Prints a summary
# with versions, timings and daemon RSS, and exits non-zero if any cluster or
# chroot build failed (a failed forky/trixie install is an error, not a skip).
# Per-step logs go to $GORBD_CLUSTERS/../logs.
set -uo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || read -ra NAMES <<<"$ALL_CLUSTERS"
LOGS=$(dirname "$CLUSTERS")/logs
mkdir -p "$LOGS" "$CLUSTERS"
T0=$(now)
log() { printf '[start-all %6.1fs] %s\n' "$(elapsed "$T0")" "$*"; }

declare -A SUITE_OF
suites=()
for n in "${NAMES[@]}"; do
  cluster_profile "$n" || exit 2
  SUITE_OF[$n]=$SUITE
  if [ -n "$SUITE" ] && ! printf '%s\n' "${suites[@]}" | grep -qx "$SUITE"; then suites+=("$SUITE"); fi
done
rm -f "$LOGS"/result-*

# start_one NAME: start one cluster, record "STATUS SECONDS" in $LOGS/result-NAME
start_one() {
  local n=$1 t r; t=$(now)
  log "starting $n"
  if "$CLUSTER_HERE/start.sh" "$n" > "$LOGS/start-$n.log" 2>&1; then r=ok; else
    r=FAILED
    log "$n FAILED; last lines of $LOGS/start-$n.log:"; tail -n 25 "$LOGS/start-$n.log" | sed 's/^/    /'
  fi
  echo "$r $(elapsed "$t")" > "$LOGS/result-$n"
  log "$n: $r in $(elapsed "$t")s"
}

# Two lanes. Lane 1: the host-binary clusters, one after another. Lane 2: the
# chroot builds (in parallel with each other), then each chroot's clusters
# as soon as that chroot is ready. Starting is mostly waiting (elections,
# peering, health polls), so two lanes keep 2 cores busy without thrashing.
(
  for n in "${NAMES[@]}"; do [ -n "${SUITE_OF[$n]}" ] || start_one "$n"; done
) &
LANE1=$!
(
  declare -A BUILD_PID
  for s in "${suites[@]}"; do
    "$CLUSTER_HERE/chroot.sh" "$s" > "$LOGS/chroot-$s.log" 2>&1 &
    BUILD_PID[$s]=$!
    log "chroot $s: building or reusing in the background (log $LOGS/chroot-$s.log)"
  done
  for s in "${suites[@]}"; do
    if wait "${BUILD_PID[$s]}"; then ok=1; log "chroot $s ready"
    else
      ok=0; log "chroot $s FAILED; last lines of $LOGS/chroot-$s.log:"
      tail -n 40 "$LOGS/chroot-$s.log" | sed 's/^/    /'
    fi
    for n in "${NAMES[@]}"; do
      [ "${SUITE_OF[$n]}" = "$s" ] || continue
      if [ $ok = 1 ]; then start_one "$n"; else echo "FAILED(chroot-$s) -" > "$LOGS/result-$n"; fi
    done
  done
) &
LANE2=$!
wait $LANE1 $LANE2

rc=0
echo
echo "== test clusters ($(elapsed "$T0")s in all) =="
printf '%-15s %-22s %-22s %8s  %s\n' NAME STATUS VERSION START_S "MONS (v2) / DAEMON RSS"
for n in "${NAMES[@]}"; do
  env=$CLUSTERS/$n/cluster.env ver="-" mons="-"
  if [ -f "$env" ]; then
    ver=$(awk -F= '$1=="CEPH_VERSION"{v=$2} $1=="CEPH_RELEASE"{r=$2} END{print v" "r}' "$env")
    mons=$(awk -F= '$1=="CEPH_MON_V2"{print $2}' "$env")
  fi
  read -r res secs 2>/dev/null < "$LOGS/result-$n" || { res=FAILED; secs=-; }
  [ "$res" = ok ] || rc=1
  printf '%-15s %-22s %-22s %8s  %s\n' "$n" "$res" "$ver" "$secs" "$mons"
  [ "$res" != ok ] || printf '%-15s %s\n' "" "$(daemon_rss "$n")"
done
for s in "${suites[@]}"; do
  r=$(chroot_root "$s")
  if [ ! -f "$r/.gorbd-ready" ]; then echo "chroot $s: BUILD FAILED (log $LOGS/chroot-$s.log)"; continue; fi
  how=reused; grep -q 'ready:' "$LOGS/chroot-$s.log" && how="built this run"
  echo "chroot $s: $(cat "$r/.gorbd-ready"); $how; build from nothing took $(cat "$r.build-seconds" 2>/dev/null || echo '?')s"
done
[ $rc = 0 ] && echo "all ${#NAMES[@]} clusters up" || echo "SOME CLUSTERS FAILED" >&2
exit $rc
