#!/bin/bash
# in-chroot.sh SUITE|CHROOTDIR DIR CMD...: run CMD with the Ceph tools of a test
# chroot, with /proc, /sys, /dev and the cluster directory DIR mounted at the
# same path inside, plus the host's /tmp at /tmp, in a private mount namespace
# (nothing stays mounted on the host).
#   in-chroot.sh forky /var/tmp/gorbd/clusters/tentacle ceph -c /var/tmp/gorbd/clusters/tentacle/ceph.conf -s
# CEPH_CLI in cluster.env is this script plus its first two arguments.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
[ $# -ge 3 ] || { echo "usage: $0 SUITE|CHROOTDIR DIR CMD..." >&2; exit 2; }
case "$1" in /*) R=$1 ;; *) R=$(chroot_root "$1") ;; esac
D=$(realpath -m -- "$2"); shift 2
[ -f "$R/.gorbd-ready" ] || { echo "chroot $R is not built (test/cluster/chroot.sh SUITE)" >&2; exit 1; }
[ -d "$D" ] || { echo "no directory $D" >&2; exit 1; }
# the host's /tmp too, so that a test can hand the tools files from t.TempDir()
inroot "$R" "$D:/tmp" "$@"
