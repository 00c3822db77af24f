#!/bin/bash
# chroot.sh SUITE: build (or reuse) the Debian SUITE chroot that carries that
# suite's Ceph (trixie = 18.2 Reef, forky = 20.2 Tentacle) under
# $GORBD_CHROOTS/SUITE (default /var/tmp/gorbd/chroots). A finished chroot has
# the marker .gorbd-ready (holding `ceph --version`) and is reused. Concurrent
# builds of one suite are serialised by flock on SUITE.lock. Logs go to
# SUITE.debootstrap.log and SUITE.apt.log next to the chroot; the build time
# to SUITE.build-seconds. Any failure exits non-zero with the log tail.
#
# Environment: MIRROR (default: the Debian mirror of the host's apt sources).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
if [ $# -ne 1 ] || ! [[ $1 =~ ^[a-z]+$ ]]; then echo "usage: $0 SUITE" >&2; exit 2; fi
SUITE=$1
R=$(chroot_root "$SUITE")
T0=$(now)
log() { printf '[chroot %s %6.1fs] %s\n' "$SUITE" "$(elapsed "$T0")" "$*"; }

detect_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources | head -n1)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || { echo "no Debian mirror in the apt sources; set MIRROR" >&2; exit 2; }
  echo "$m"
}

# Reef (trixie): mgr_util.py imports bcrypt at top level; Debian's bcrypt is a
# PyO3 module, which refuses to load in a second Python sub-interpreter, so
# almost every mgr module fails ("mgr modules have failed dependencies") and
# rbd_support never loads. Only the dashboard hashes passwords: import lazily.
# Tentacle no longer imports bcrypt there. Runs on every use (idempotent).
fixup() {
  local u="$R/usr/share/ceph/mgr/mgr_util.py"
  if [ -f "$u" ] && grep -q '^import bcrypt$' "$u"; then
    sed -i -e 's/^import bcrypt$/# import bcrypt  -- gorbd test bed: lazy, PyO3 cannot load in mgr sub-interpreters/' \
           -e '/^def password_hash(/a\    import bcrypt' "$u"
    rm -rf "$R/usr/share/ceph/mgr/__pycache__"
    log "patched mgr_util.py (lazy bcrypt import)"
  fi
}

no_mounts_under() {
  if awk -v r="$1/" 'index($2"/", r)==1 {f=1} END{exit !f}' /proc/self/mounts; then
    echo "ERROR: something is mounted under $1 on the host; unmount it first" >&2; exit 1
  fi
}

# Tools the interop tests run with the chroot's own librbd: qemu's rbd
# driver (encrypt.format=luks1|luks2 is librbd's encryption; the release's
# rbd CLI has no encryption-aware data commands). Installed on demand, also
# into chroots built before they were listed here.
EXTRA_PKGS=(qemu-utils qemu-block-extra)
extras() {
  local missing=() p
  for p in "${EXTRA_PKGS[@]}"; do
    [ "$(inroot "$R" "" dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if ! { inroot "$R" "" apt-get update -q && inroot "$R" "" env DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -q --no-install-recommends "${missing[@]}"; } >> "$R.apt.log" 2>&1; then
    echo "ERROR: installing ${missing[*]} in the $SUITE chroot failed; last lines of $R.apt.log:" >&2
    tail -n 40 "$R.apt.log" >&2; exit 1
  fi
  inroot "$R" "" apt-get clean
}

mkdir -p "$CHROOTS"
exec 9>"$R.lock"
flock 9
if [ -f "$R/.gorbd-ready" ] && [ -x "$R/usr/bin/ceph-mon" ]; then
  fixup
  extras
  exit 0
fi
MIRROR=${MIRROR:-$(detect_mirror)}
command -v debootstrap >/dev/null || { echo "debootstrap missing: run test/deps.sh" >&2; exit 1; }
no_mounts_under "$R"
if [ ! -f "$R/.gorbd-debootstrapped" ]; then
  rm -rf --one-file-system "$R"
  # bookworm's debootstrap has no script for newer suites such as forky; all
  # suites since buster use the same script as sid.
  script=/usr/share/debootstrap/scripts/$SUITE
  [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
  log "debootstrap --variant=minbase $SUITE $MIRROR ($(basename "$script") script)"
  if ! debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" "$script" > "$R.debootstrap.log" 2>&1; then
    echo "ERROR: debootstrap of $SUITE failed; last lines of $R.debootstrap.log:" >&2
    tail -n 30 "$R.debootstrap.log" >&2; exit 1
  fi
  touch "$R/.gorbd-debootstrapped"
  log "debootstrap done"
fi
# maintainer scripts must not start services inside the chroot
printf '#!/bin/sh\nexit 101\n' > "$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
# testing/unstable Release files are valid for 7 days only and a lagging
# mirror serves expired ones; debootstrap does not check, apt does.
echo 'Acquire::Check-Valid-Until "false";' > "$R/etc/apt/apt.conf.d/99gorbd-no-valid-until"
echo "deb $MIRROR $SUITE main" > "$R/etc/apt/sources.list"
cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
log "apt-get install ceph-mon ceph-osd ceph-mgr ceph-common"
if ! { inroot "$R" "" apt-get update -q && inroot "$R" "" env DEBIAN_FRONTEND=noninteractive \
       apt-get install -y -q --no-install-recommends ceph-mon ceph-osd ceph-mgr ceph-common; } > "$R.apt.log" 2>&1; then
  echo "ERROR: installing Ceph in the $SUITE chroot failed; last lines of $R.apt.log:" >&2
  tail -n 40 "$R.apt.log" >&2; exit 1
fi
inroot "$R" "" apt-get clean
fixup
extras
inroot "$R" "" ceph --version > "$R/.gorbd-ready.tmp"
mv "$R/.gorbd-ready.tmp" "$R/.gorbd-ready"
elapsed "$T0" > "$R.build-seconds"
log "ready: $(cat "$R/.gorbd-ready") ($(du -sx --block-size=1M "$R" | cut -f1) MiB)"
