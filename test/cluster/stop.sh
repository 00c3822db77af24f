#!/bin/bash
# stop.sh NAME: stop the daemons of the named test cluster.
#
# Only processes named in NAME/run/*.pid whose command line contains
# NAME/ceph.conf are signalled: TERM to OSDs and mgr first (an OSD that cannot
# reach a mon waits osd_mon_shutdown_timeout before exiting), then to the mons;
# KILL to any still alive after 30 s. cluster.env is moved to
# cluster.env.stopped so tests see the cluster as absent. Data stays in place.
# Chroot daemons need no unmounting: their mounts live only in their own
# private mount namespaces.
set -uo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 NAME" >&2; exit 2; }
cluster_profile "$1" || exit 2
D=$CLUSTERS/$1
[ -d "$D/run" ] || { echo "$1: nothing to stop"; exit 0; }
[ -f "$D/cluster.env" ] && mv -f "$D/cluster.env" "$D/cluster.env.stopped"
rc=0
stop_pidfiles 30 "$D"/run/osd.*.pid "$D"/run/mds.*.pid "$D"/run/mgr.*.pid || rc=1
stop_pidfiles 30 "$D"/run/mon.*.pid || rc=1
exit $rc
