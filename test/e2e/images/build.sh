#!/bin/bash
# build.sh OUTDIR: the container images the Kubernetes node tests run, built
# without a container engine or registry, as `docker save` archives that
# `ctr -n k8s.io images import` loads. Writes OUTDIR/<name>.tar and
# OUTDIR/images.txt (one line per archive: "<name>.tar <ref> [<ref>...]").
#
#   GORBD_E2E_BINS=$(bash test/e2e/build-bins.sh | tail -n 1) bash test/e2e/images/build.sh /tmp/img
#
# Images (references exactly as k8s.io/kubernetes test/utils/image/manifest.go
# names them at the control plane's version, v1.37.1, and as the chart names
# the plugin; see README.md "Images" for how each one matches upstream):
#   csi-gorbd          the Dockerfile's runtime stage: debian bookworm-slim +
#                      its apt packages + the static binary, same entrypoint
#   pause              sandbox image (containerd's sandbox_image): ./pause
#   busybox            Debian's busybox-static with every applet linked in /bin
#   agnhost            agnhost from build-bins.sh ($GORBD_E2E_BINS/agnhost) on
#                      busybox applets (upstream's base is Alpine, i.e. busybox)
#   nginx              bookworm-slim + Debian's nginx, upstream's default site
#   glibc-dns-testing  bookworm-slim + dnsutils, as upstream's Dockerfile
#
# Environment: GORBD_IMAGES (the names to build, default all six: e.g.
# "csi-gorbd" alone when only the plugin changed), GORBD_E2E_BINS (required
# for agnhost), GORBD_BIN (a static
# csi-gorbd; default: built here as the Dockerfile builds it),
# CSI_GORBD_IMAGES (space-separated refs for the plugin image; default
# ghcr.io/csi-gorbd/csi-gorbd:<chart appVersion>), GORBD_IMAGE_CACHE (Debian
# root filesystems, default /var/tmp/gorbd/images), MIRROR (Debian mirror,
# default the host's). Debian root filesystems are cached by package list;
# the archives are rebuilt every run (seconds). An image with a root
# filesystem and added files has two layers (the filesystem, then the
# files): a new csi-gorbd binary on the same base changes only the second,
# so a containerd that has the first unpacks only the binary.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
export PATH=/usr/local/go/bin:$PATH
CACHE=${GORBD_IMAGE_CACHE:-/var/tmp/gorbd/images}
ALL="csi-gorbd pause busybox agnhost glibc-dns-testing nginx"
read -ra WANT <<<"${GORBD_IMAGES:-$ALL}"
for w in "${WANT[@]}"; do
  [[ " $ALL " == *" $w "* ]] || { echo "build.sh: unknown image $w (known: $ALL)" >&2; exit 2; }
done
want() { [[ " ${WANT[*]} " == *" $1 "* ]]; }
if want agnhost; then
    BINS=${GORBD_E2E_BINS:?GORBD_E2E_BINS must name build-bins.sh output (agnhost comes from there)}
    [ -x "$BINS/agnhost" ] || { echo "build.sh: $BINS/agnhost missing: build-bins.sh builds it" >&2; exit 1; }
fi
SUITE=bookworm   # the Dockerfile's DEBIAN_RELEASE (checked below)
T0=$(date +%s)
log() { echo "[images $(( $(date +%s) - T0 ))s] $*" >&2; }

# ---- image references (manifest.go, v1.37.1)
PAUSE=registry.k8s.io/pause:3.10.2
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.37.0-2
AGNHOST=registry.k8s.io/e2e-test-images/agnhost:2.66.1
NGINX=registry.k8s.io/e2e-test-images/nginx:1.27.0-2
GLIBC=registry.k8s.io/e2e-test-images/glibc-dns-testing:2.1.1
APPVERSION=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO/charts/csi-gorbd/Chart.yaml")
read -ra CSI_REFS <<<"${CSI_GORBD_IMAGES:-ghcr.io/csi-gorbd/csi-gorbd:$APPVERSION}"

TMP=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
go build -trimpath -o "$TMP/mkimage" "$REPO/test/e2e/images/mkimage"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$TMP/pause" "$REPO/test/e2e/images/pause"
: > "$TMP/images.txt"
# mkimage NAME REFS... -- FLAGS...: OUT/NAME.tar, listed in images.txt
mkimage() {
  local name=$1; shift
  local refs=() tflags=()
  while [ "$1" != -- ]; do refs+=("$1"); tflags+=(-t "$1"); shift; done
  shift
  "$TMP/mkimage" -o "$OUT/$name.tar" "${tflags[@]}" "$@" >/dev/null
  echo "$name.tar ${refs[*]}" >> "$TMP/images.txt"
  log "$name: ${refs[*]} ($(du -h "$OUT/$name.tar" | cut -f1))"
}

# ---- the Dockerfile's runtime stage, read from the Dockerfile itself
DF=$(sed -e 's/#.*//' "$REPO/Dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | tr -s ' \t' ' ')
grep -q "^ARG DEBIAN_RELEASE=$SUITE\$" <<<"$DF" || { echo "build.sh: the Dockerfile's DEBIAN_RELEASE is not $SUITE" >&2; exit 1; }
grep -q '^FROM debian:${DEBIAN_RELEASE}-slim$' <<<"$DF" || { echo "build.sh: the Dockerfile's runtime base is not debian:\${DEBIAN_RELEASE}-slim" >&2; exit 1; }
read -ra CSI_PKGS <<<"$(sed -n 's/.*apt-get install -y --no-install-recommends \([a-z0-9 .+-]*\) &&.*/\1/p' <<<"$DF")"
CSI_DST=$(sed -n 's|^COPY --from=build /out/csi-gorbd \(/[^ ]*\)$|\1|p' <<<"$DF")
CSI_ENTRY=$(sed -n 's/^ENTRYPOINT \(\[.*\]\)$/\1/p' <<<"$DF")
CSI_LABELS=()
while IFS= read -r l; do CSI_LABELS+=(-label "$l"); done < <(grep '^LABEL ' <<<"$DF" | grep -o '[a-z.]*="[^"]*"' | sed 's/="\(.*\)"$/=\1/')
if [ ${#CSI_PKGS[@]} -eq 0 ] || [ -z "$CSI_DST" ] || [ -z "$CSI_ENTRY" ] || [ ${#CSI_LABELS[@]} -eq 0 ] || grep -q '^USER ' <<<"$DF"; then
  echo "build.sh: cannot read the runtime stage from the Dockerfile (packages '${CSI_PKGS[*]}', binary '$CSI_DST', entrypoint '$CSI_ENTRY', labels ${#CSI_LABELS[@]}, USER must be absent)" >&2
  exit 1
fi

# ---- Debian root filesystems
detect_mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '/^URIs:/{for(i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources | head -n1)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || { echo "build.sh: no Debian mirror in the apt sources; set MIRROR" >&2; return 1; }
  echo "$m"
}
# inroot ROOT CMD...: CMD chrooted into ROOT with /proc, /sys and /dev in a
# private mount namespace (nothing stays mounted on the host).
inroot() {
  local root=$1; shift
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare --mount --propagation private -- /bin/bash -c '
    set -e; R=$1; shift
    mount -t proc proc "$R/proc"; mount -t sysfs sysfs "$R/sys"; mount --rbind /dev "$R/dev"
    exec chroot "$R" "$@"' inroot "$root" "$@"
}
# Files a debian:*-slim image leaves out (debuerreotype's slimify list).
SLIM='path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*'
slim_prune() {
  local r=$1
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r"/usr/share/{groff,info,linda,man}/* "$r"/usr/share/lintian/overrides/*
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/debconf/*-old \
    "$r"/var/log/apt/* "$r"/var/log/dpkg.log "$r"/var/log/alternatives.log "$r"/var/log/bootstrap.log
}
# base_rootfs: debootstrap --variant=minbase SUITE, slimmed like debian:SUITE-slim.
base_rootfs() {
  local key dir
  key=$(printf '%s\n' v1 "$SUITE" "$SLIM" | sha256sum | cut -c1-12)
  dir=$CACHE/rootfs/$SUITE-slim-$key
  if [ ! -f "$dir.done" ]; then
    local mirror
    mirror=${MIRROR:-$(detect_mirror)}
    command -v debootstrap >/dev/null || { echo "build.sh: debootstrap missing: run test/deps.sh" >&2; return 1; }
    rm -rf --one-file-system "$dir" "$dir.tmp"; mkdir -p "$CACHE/rootfs"
    log "debootstrap --variant=minbase $SUITE $mirror"
    if ! debootstrap --variant=minbase "$SUITE" "$dir.tmp" "$mirror" > "$dir.debootstrap.log" 2>&1; then
      tail -n 30 "$dir.debootstrap.log" >&2; echo "build.sh: debootstrap failed" >&2; return 1
    fi
    mkdir -p "$dir.tmp/etc/dpkg/dpkg.cfg.d"
    echo "$SLIM" > "$dir.tmp/etc/dpkg/dpkg.cfg.d/docker"
    # apt as in Debian's images: no caches kept, no translations.
    echo 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' > "$dir.tmp/etc/apt/apt.conf.d/docker-clean"
    echo 'Acquire::Languages "none";' > "$dir.tmp/etc/apt/apt.conf.d/docker-no-languages"
    echo "deb $mirror $SUITE main" > "$dir.tmp/etc/apt/sources.list"
    echo "deb $mirror $SUITE-updates main" >> "$dir.tmp/etc/apt/sources.list"
    slim_prune "$dir.tmp"
    mv "$dir.tmp" "$dir"; touch "$dir.done"
    log "base $SUITE-slim ready ($(du -sm "$dir" | cut -f1) MiB)"
  fi
  echo "$dir"
}
# debian_rootfs NAME PKGS...: the base with PKGS installed as a Dockerfile's
# `RUN apt-get update && apt-get install -y --no-install-recommends PKGS &&
# rm -rf /var/lib/apt/lists/*` would; cached by NAME and PKGS.
debian_rootfs() {
  local name=$1; shift
  local base key dir
  base=$(base_rootfs)
  key=$(printf '%s\n' v1 "$base" "$@" | sha256sum | cut -c1-12)
  dir=$CACHE/rootfs/$name-$key
  if [ ! -f "$dir.done" ]; then
    rm -rf --one-file-system "$dir" "$dir.tmp"
    cp -a "$base" "$dir.tmp"
    cp -L /etc/resolv.conf "$dir.tmp/etc/resolv.conf" 2>/dev/null || true
    log "$name: apt-get install $*"
    if ! { inroot "$dir.tmp" apt-get update -q && inroot "$dir.tmp" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -q --no-install-recommends "$@"; } > "$dir.apt.log" 2>&1; then
      tail -n 30 "$dir.apt.log" >&2; echo "build.sh: installing $* failed" >&2; return 1
    fi
    : > "$dir.tmp/etc/resolv.conf"
    slim_prune "$dir.tmp"
    mv "$dir.tmp" "$dir"; touch "$dir.done"
  fi
  echo "$dir"
}

# ---- csi-gorbd
if want csi-gorbd; then
  BIN=${GORBD_BIN:-}
  if [ -z "$BIN" ]; then
    BIN=$TMP/csi-gorbd
    (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$BIN" ./cmd/csi-gorbd)
  fi
  if ldd "$BIN" >/dev/null 2>&1; then echo "build.sh: $BIN is not a static binary" >&2; exit 1; fi
  R=$(debian_rootfs csi-gorbd "${CSI_PKGS[@]}")
  mkimage csi-gorbd "${CSI_REFS[@]}" -- -root "$R" -add "$BIN:$CSI_DST:0755" -entrypoint "$CSI_ENTRY" "${CSI_LABELS[@]}" \
    -created-by "Dockerfile runtime stage: debian:$SUITE-slim + ${CSI_PKGS[*]} + $CSI_DST"
fi

# ---- pause: upstream's image is /pause as 65535:65535
if want pause; then
  mkimage pause "$PAUSE" -- -add "$TMP/pause:/pause:0755" -entrypoint '["/pause"]' -user 65535:65535
fi

# ---- busybox userland (busybox and agnhost)
BB=$(dpkg -L busybox-static 2>/dev/null | grep -m1 '/bin/busybox$' || true)
[ -n "$BB" ] && [ -x "$BB" ] || { echo "build.sh: Debian's busybox-static is not installed: run test/deps.sh" >&2; exit 1; }
# busybox_root DIR: busybox with every applet hard-linked in /bin and the
# base files of the upstream busybox image.
busybox_root() {
  local r=$1 a
  mkdir -p "$r"/{bin,dev,etc,home,proc,root,sys,usr/sbin,var/spool/mail,var/www} "$r/tmp"
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  cp "$BB" "$r/bin/busybox"
  for a in $("$BB" --list); do
    [ "$a" = busybox ] || [ -e "$r/bin/$a" ] || ln "$r/bin/busybox" "$r/bin/$a"
  done
  cat > "$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat > "$r/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
EOF
  echo "127.0.0.1 localhost" > "$r/etc/hosts"
}
if want busybox; then
  busybox_root "$TMP/busybox"
  mkimage busybox "$BUSYBOX" -- -root "$TMP/busybox" -cmd '["sh"]'
fi

# ---- agnhost: upstream's layout (/agnhost, /agnhost-2, the porter
# certificates, /uploads, the user and group the tests look for).
if want agnhost; then
  busybox_root "$TMP/agnhost"
  cp "$BINS/agnhost" "$TMP/agnhost/agnhost"; chmod 755 "$TMP/agnhost/agnhost"
  ln -s agnhost "$TMP/agnhost/agnhost-2"
  mkdir -p "$TMP/agnhost/uploads"
  KDIR=$(cd "$REPO/test/e2e/tools/k8s" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
  cp "$KDIR/test/images/agnhost/porter/localhost.crt" "$KDIR/test/images/agnhost/porter/localhost.key" "$TMP/agnhost/"
  chmod 644 "$TMP/agnhost/localhost.crt" "$TMP/agnhost/localhost.key"
  echo "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh" >> "$TMP/agnhost/etc/passwd"
  echo "user-defined-in-image:x:1000:" >> "$TMP/agnhost/etc/group"
  echo "group-defined-in-image:x:50000:user-defined-in-image" >> "$TMP/agnhost/etc/group"
  mkdir -p "$TMP/agnhost/home/user-defined-in-image" && chown 1000:1000 "$TMP/agnhost/home/user-defined-in-image"
  mkimage agnhost "$AGNHOST" -- -root "$TMP/agnhost" -entrypoint '["/agnhost"]' -cmd '["pause"]' \
    -expose 80 -expose 8080 -expose 8081 -expose 9376 -expose 5000
fi

# ---- glibc-dns-testing: upstream is debian:bookworm-slim + dnsutils
if want glibc-dns-testing; then
  R=$(debian_rootfs glibc-dns-testing dnsutils)
  mkimage glibc-dns-testing "$GLIBC" -- -root "$R" -cmd '["bash"]'
fi

# ---- nginx: Debian's nginx serving upstream's default site on port 80,
# logs to the container's stdout/stderr, stopped with SIGQUIT.
if want nginx; then
  R=$(debian_rootfs nginx nginx)
  cat > "$TMP/nginx-site" <<'EOF'
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name localhost;
    root /usr/share/nginx/html;
    index index.html index.htm;
    location / { try_files $uri $uri/ =404; }
}
EOF
  ln -s /dev/stdout "$TMP/nginx-access.log"; ln -s /dev/stderr "$TMP/nginx-error.log"
  [ -f "$R/usr/share/nginx/html/index.html" ] || { echo "build.sh: Debian's nginx has no /usr/share/nginx/html/index.html" >&2; exit 1; }
  mkimage nginx "$NGINX" -- -root "$R" -add "$TMP/nginx-site:/etc/nginx/sites-enabled/default:0644" \
    -add "$TMP/nginx-access.log:/var/log/nginx/access.log" -add "$TMP/nginx-error.log:/var/log/nginx/error.log" \
    -cmd '["nginx", "-g", "daemon off;"]' -expose 80 -stop-signal SIGQUIT
fi

mv "$TMP/images.txt" "$OUT/images.txt"
log "done: $(wc -l < "$OUT/images.txt") images in $OUT"
