# syntax=docker/dockerfile:1
#
# csi-gorbd container image: one static Go binary plus the filesystem tools
# the node plugin runs (mkfs, blkid, mount, resize2fs/xfs_growfs, modprobe).
# No Ceph packages: the Ceph client is pure Go inside the binary.
#
# Multi-arch by cross-compiling Go in the build platform's container:
#   docker buildx build --platform linux/amd64,linux/arm64 -t REPO:TAG --push .
# (see docs/deploy.md).

ARG GO_VERSION=1.26
ARG DEBIAN_RELEASE=bookworm

# ---- build: runs natively on the builder's platform, cross-compiles ----
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build
# Set by BuildKit from --platform (linux/amd64 -> amd64, linux/arm64 -> arm64).
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOARM=$(echo "${TARGETVARIANT}" | tr -d v) \
    CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w" -o /out/csi-gorbd ./cmd/csi-gorbd

# ---- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim
# e2fsprogs: mkfs.ext4, resize2fs, e2fsck     xfsprogs: mkfs.xfs, xfs_growfs
# util-linux: blkid, fsck, losetup            mount: mount, umount
# kmod: modprobe nbd on nodes that have not loaded it
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs xfsprogs util-linux mount kmod \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*
COPY --from=build /out/csi-gorbd /usr/local/bin/csi-gorbd
LABEL org.opencontainers.image.title="csi-gorbd" \
      org.opencontainers.image.description="Kubernetes CSI driver for Ceph RBD with a pure-Go client and an in-process NBD data path" \
      org.opencontainers.image.source="https://github.com/csi-gorbd/csi-gorbd" \
      org.opencontainers.image.licenses="Apache-2.0"
# The chart passes only arguments: controller|node|all and flags.
ENTRYPOINT ["/usr/local/bin/csi-gorbd"]
