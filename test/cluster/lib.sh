# lib.sh: shared by the test/cluster scripts (sourced, never run).
#
# Knows the named clusters of the test bed, where clusters and chroots live
# ($GORBD_CLUSTERS, $GORBD_CHROOTS; ports shifted by $GORBD_PORT_OFFSET),
# and how to run a Ceph command either with the host's binaries or inside a
# Debian chroot that carries a newer Ceph.

# shellcheck disable=SC2034  # the variables set here are used by the sourcing scripts
CLUSTER_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTERS=$(realpath -m -- "${GORBD_CLUSTERS:-/var/tmp/gorbd/clusters}")
CHROOTS=$(realpath -m -- "${GORBD_CHROOTS:-/var/tmp/gorbd/chroots}")

# The set start-all.sh starts, in start order.
ALL_CLUSTERS="pacific noauth pacific-secure pacific3 pacific-osd3 reef reef-osd3 tentacle tentacle256 tentacle-osd3"

# cluster_profile NAME: sets the profile variables of one named cluster.
#   SUITE     "" = host binaries, else the Debian suite of the chroot
#   PB        port base: mon v2 = PB (+2 per extra mon), v1 = v2+1;
#             mgr/osd bind inside PB+2*NMON .. PB+49
#   NMON      number of monitors (ids a, b, c)
#   WITH_OSD  1 = also a mgr and one OSD plus an rbd pool; 0 = mons only
#   AUTH      cephx | none
#   MSMODE    "" = Ceph defaults, secure = every connection mode secure only
#   KEYTYPE   aes (AES-128 client.admin, aes256k allowed) | default
#   NOSD      number of OSDs (ids 0..NOSD-1) when WITH_OSD=1
#   STORE     default OBJECTSTORE (memstore; bluestore keeps data over kill -9)
#   PSIZE PMINSIZE  osd pool default size / min size (pool rbd gets them)
#   FASTFAIL  1 = a killed OSD is marked down within seconds (fault tests)
cluster_profile() {
  SUITE=""; NMON=1; WITH_OSD=1; AUTH=cephx; MSMODE=""; KEYTYPE=aes
  NOSD=1; STORE=memstore; PSIZE=1; PMINSIZE=1; FASTFAIL=0
  case "$1" in
    pacific)        PB=7500 ;;
    pacific3)       PB=7550; NMON=3 ;;
    pacific-osd3)   PB=7650; NOSD=3; STORE=bluestore; PSIZE=3; PMINSIZE=2; FASTFAIL=1 ;;
    reef-osd3)      PB=7750; SUITE=trixie; NOSD=3; STORE=bluestore; PSIZE=3; PMINSIZE=2; FASTFAIL=1 ;;
    tentacle-osd3)  PB=7850; SUITE=forky; NOSD=3; STORE=bluestore; PSIZE=3; PMINSIZE=2; FASTFAIL=1 ;;
    reef)           PB=7600; SUITE=trixie ;;
    tentacle)       PB=7700; SUITE=forky ;;
    tentacle256)    PB=7800; SUITE=forky; KEYTYPE=default ;;
    pacific-secure) PB=7900; WITH_OSD=0; MSMODE=secure ;;
    noauth)         PB=7950; WITH_OSD=0; AUTH=none ;;
    *) echo "unknown cluster name '$1' (known: $ALL_CLUSTERS)" >&2; return 2 ;;
  esac
  # GORBD_PORT_OFFSET shifts every port, so that a second test bed (other
  # GORBD_CLUSTERS) can run next to this one, e.g. 1000 -> 8500..8999.
  PB=$((PB + ${GORBD_PORT_OFFSET:-0}))
}

chroot_root() { echo "$CHROOTS/$1"; }

# inroot ROOT BINDDIRS CMD...: run CMD chrooted into ROOT inside a private
# mount namespace that has /proc, /sys, /dev and each directory of the
# colon-separated BINDDIRS (may be empty) bind-mounted at the same path.
# Daemons started this way keep the
# namespace; the mounts vanish with the last process using them, so nothing
# is ever left mounted on the host.
inroot() {
  local root=$1 bind=$2; shift 2
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare --mount --propagation private -- /bin/bash -c '
    set -e; R=$1; D=$2; shift 2
    mount -t proc proc "$R/proc"
    mount -t sysfs sysfs "$R/sys"
    mount --rbind /dev "$R/dev"
    IFS=: read -ra dirs <<<"$D"
    for d in "${dirs[@]}"; do mkdir -p "$R$d"; mount --bind "$d" "$R$d"; done
    exec chroot "$R" "$@"' inroot "$root" "$bind" "$@"
}

# cephrun CMD...: run a Ceph binary of the current cluster (host or chroot).
# Uses $ROOT ("" = host) and $D.
cephrun() {
  if [ -z "${ROOT:-}" ]; then "$@"; else inroot "$ROOT" "$D" "$@"; fi
}

# pid_is_ours PIDFILE: prints the pid if it names a live process whose
# command line mentions $D/ceph.conf (so a recycled pid is never signalled).
pid_is_ours() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(tr -dc 0-9 < "$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$D/ceph.conf" || return 1
  echo "$pid"
}

# stop_pidfiles TIMEOUT_S PIDFILE...: TERM the daemons, wait, KILL leftovers.
stop_pidfiles() {
  local t=$1 f pid pids=() rc=0; shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    if pid=$(pid_is_ours "$f"); then
      echo "stopping $(basename "$f" .pid) (pid $pid)"
      kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    fi
    rm -f "$f"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq $((t * 10))); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then echo "pid $pid still alive after ${t}s: KILL"; kill -KILL "$pid" 2>/dev/null || rc=1; fi
  done
  return $rc
}

now() { date +%s.%N; }
elapsed() { awk -v a="$(now)" -v b="$1" 'BEGIN{printf "%.1f", a-b}'; }

# daemon_rss NAME: prints "mon.a=62M mgr.x=310M ..." for the running daemons.
daemon_rss() {
  local D=$CLUSTERS/$1 f pid out=""
  for f in "$D"/run/*.pid; do
    [ -e "$f" ] || continue
    pid=$(pid_is_ours "$f") || continue
    out+="$(basename "$f" .pid)=$(awk '/^VmRSS:/{printf "%dM", $2/1024}' "/proc/$pid/status") "
  done
  echo "${out% }"
}
