#!/usr/bin/env bash
# Builds ceph-csi's cephcsi binary as a test oracle, from a ceph-csi checkout
# the user provides. Not used by CI (CI cannot reach GitHub); the state this
# oracle writes is captured into test/cephcsi/testdata by capture.sh and
# replayed by the tests instead. No ceph-csi code enters this tree.
#
#   test/cephcsi/build.sh SRC [OUT]
#
# SRC  a ceph-csi checkout or `git archive` of a release tag (it vendors its Go
#      dependencies); if SRC has no .git, set CEPHCSI_COMMIT to the tag's commit.
# OUT  the binary (default /var/tmp/ceph-csi-bin/cephcsi); OUT.version records
#      the version, commit, tags and the librbd it was linked against.
#
# cgo links against the host's librados-dev/librbd-dev/libcephfs-dev (Debian
# 12: Pacific 16.2, installed here if missing). go-ceph's build tags: upstream
# builds with "$CEPH_VERSION ceph_preview" (squid); the squid tag gates nothing
# in go-ceph <= v0.28, and the functions ceph_preview enables exist in Pacific's
# librbd (rbd_snap_get_group_namespace) or are pure mgr commands (cephfs admin),
# so "ceph_preview" alone builds the same code against Pacific's libraries.
set -euo pipefail
src=${1:?usage: build.sh CEPH_CSI_SRC [OUT]}
out=${2:-/var/tmp/ceph-csi-bin/cephcsi}
tags=${CEPHCSI_TAGS:-ceph_preview}

need=()
for p in librados-dev librbd-dev libcephfs-dev gcc; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

cd "$src"
version=$(. ./build.env && echo "$CSI_IMAGE_VERSION")
commit=${CEPHCSI_COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}
[[ -n $commit ]] || { echo "build.sh: $src has no .git; set CEPHCSI_COMMIT" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
start=$(date +%s)
CGO_ENABLED=1 GOFLAGS=-mod=vendor go build -tags="$tags" \
  -ldflags "-X github.com/ceph/ceph-csi/internal/util.GitCommit=$commit -X github.com/ceph/ceph-csi/internal/util.DriverVersion=$version" \
  -o "$out" ./cmd/
librbd=$(dpkg-query -W -f='${Version}' librbd-dev)
cat >"$out.version" <<V
{"cephcsi_version": "$version", "cephcsi_commit": "$commit", "go_tags": "$tags", "go": "$(go env GOVERSION)", "librbd_dev": "$librbd", "build_seconds": $(( $(date +%s) - start ))}
V
cat "$out.version"
