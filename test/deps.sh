#!/bin/bash
# deps.sh: install the Debian packages the test suite needs (idempotent).
# Append one package per line to PKGS. apt-get update runs only when
# something is missing.
set -euo pipefail
PKGS=(
  ceph-mon
  ceph-osd
  ceph-mgr
  ceph-common
  ceph-base
  debootstrap
  util-linux
  procps
  iproute2
  make
  libnbd-bin
  qemu-utils
  fio
  qemu-system-x86
  busybox-static
  e2fsprogs
  xfsprogs
  cpio
  kmod
  qemu-block-extra
  mount
  curl
  gcc
  libc6-dev
  cryptsetup-bin
)
missing=()
for p in "${PKGS[@]}"; do
  s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$s" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages installed"
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
