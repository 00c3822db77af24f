// Package controllerserver implements the CSI Controller service of
// csi-gorbd on the pure-Go Ceph stack (packages rados and rbd): volumes
// are RBD images, snapshots are native RBD snapshots of the source image,
// and volumes made from a snapshot or another volume are clone v2 children
// (no data is copied).
//
// Inputs follow ceph-csi: a clusters file (JSON list of {"clusterID",
// "monitors"}), secrets userID/userKey, StorageClass parameters clusterID,
// pool, dataPool, imageFeatures (default "layering"), volumeNamePrefix
// (default "csi-vol-"), snapshotNamePrefix (default "csi-snap-"),
// maxCloneDepth (default: the driver's --max-clone-depth, 8).
//
// Layers, bottom up:
//
//   - ids.go: volume and snapshot ids. They are versioned, URL-safe strings
//     that carry the cluster, the pool id and the image (and snapshot)
//     name, so no lookup is needed to find an object from its id.
//   - params.go: the clusters file, StorageClass parameters, secrets,
//     capacity rounding and access-mode checks.
//   - journal.go: idempotency by request name. An omap object per pool
//     (csi.volumes.<instance>, csi.snaps.<instance>) maps request names to
//     what was made (and images back to request names); a repeat with
//     another size or source gets AlreadyExists.
//   - conns.go: one cached rados.Conn per (cluster, user), dropped and
//     redialled after a connection-level failure.
//   - errors.go: the only place rados/rbd errors become gRPC codes.
//   - probe.go: monitor reachability for Probe before any session exists.
//   - trash.go: snapshot semantics without hidden copies. A volume deleted
//     while it has snapshots (or clones hanging from it) goes to the RBD
//     trash and keeps serving them; a snapshot deleted while clones hang
//     from it stays as a tombstoned RBD snapshot; whenever a clone goes,
//     its parent chain is collected (dead snapshots removed, empty trashed
//     images purged).
//   - flatten.go: a new clone whose chain is deeper than maxCloneDepth is
//     flattened by a background goroutine, never inside a request and
//     never for a volume a node already uses.
//   - controller.go: the CSI RPCs, each behind an in-flight guard on its
//     name or id (a concurrent duplicate gets Aborted). Operations that
//     change an image's snapshots or existence (DeleteVolume,
//     CreateSnapshot, DeleteSnapshot, cloning, flattening) also wait for
//     each other on a per-image lock, so DeleteVolume racing
//     CreateSnapshot can neither orphan nor lose a snapshot. The locks are
//     per process: run one active controller (leader election).
//
// Not offered: ListVolumes, GetCapacity, ControllerPublish.
package controllerserver
