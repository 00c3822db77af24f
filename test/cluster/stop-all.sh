#!/bin/bash
# stop-all.sh [NAME...]: stop the named test clusters (default: all), in parallel.
set -uo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
NAMES=("$@"); [ ${#NAMES[@]} -gt 0 ] || read -ra NAMES <<<"$ALL_CLUSTERS"
pids=()
for n in "${NAMES[@]}"; do
  "$CLUSTER_HERE/stop.sh" "$n" 2>&1 | sed "s/^/[$n] /" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit $rc
