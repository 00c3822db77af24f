// Package controllerserver implements the CSI Controller service of
// csi-gorbd on the pure-Go Ceph stack (packages rados and rbd): volumes
// are RBD images, snapshots are native RBD snapshots of the source image,
// and volumes made from a snapshot or another volume are clone v2 children
// (no data is copied).
//
// Inputs follow ceph-csi: a clusters file (JSON list of {"clusterID",
// "monitors"}), secrets userID/userKey, StorageClass parameters clusterID,
// pool, dataPool, imageFeatures (default "layering"), volumeNamePrefix
// (default "csi-vol-"), snapshotNamePrefix (default "csi-snap-").
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
//   - controller.go: the CSI RPCs, each behind an in-flight guard on its
//     name or id (a concurrent duplicate gets Aborted).
//
// Not done yet: deleting a volume that still has snapshots is refused with
// FailedPrecondition (ceph-csi hides such images in the trash instead);
// ListVolumes, GetCapacity and ControllerPublish are not offered.
package controllerserver
