// Package controllerserver implements the CSI Controller service of
// csi-gorbd on the pure-Go Ceph stack (packages rados and rbd): volumes
// are RBD images, snapshots are native RBD snapshots of the source image,
// and volumes made from a snapshot or another volume are clone v2 children
// (no data is copied).
//
// Inputs and on-disk formats are ceph-csi's (docs/ceph-csi-compat.md):
// its config.json as the clusters file (rbd.radosNamespace honoured, and
// cephOptions), its cluster-mapping.json, secrets userID/userKey, its
// StorageClass parameters (each honoured, logged as without meaning for
// this node, or refused by name; csiceph.ParseVolumeParams), its volume
// and snapshot handles and its omap journal. ceph-csi's own volumes and
// snapshots (csi-snap-<uuid> images) are served in place.
//
// What both services share (volume and snapshot ids, the clusters file,
// secrets and StorageClass parameters, access-mode checks, the one error
// → gRPC code table and the pool of cluster connections) lives in package
// internal/csiceph. Files, bottom up:
//
//   - params.go: capacity rounding.
//
//   - legacy.go: the journal this driver wrote before adopting ceph-csi's
//     (JSON under the same keys, "v1."/"s1." ids): still read.
//
//   - resolve.go: ids to images. A handle leads through its pool and the
//     clusterID's namespace to csi.volume.<uuid> / csi.snap.<uuid>
//     (package internal/journal), or through cluster-mapping.json
//     elsewhere; idempotency by request name is the journal's directory
//     (a repeat with another size or source gets AlreadyExists).
//
//   - topology.go: topologyConstrainedPools against the accessibility
//     requirements, as ceph-csi places volumes.
//
//   - server.go: the Server, its sessions (a pooled connection and a pool
//     of the cluster), the per-image locks and Probe's readiness (pooled
//     sessions answer, unpooled clusters' monitors accept connections).
//
//   - trash.go: snapshot semantics without hidden copies. A volume deleted
//     while it has snapshots (or clones hanging from it) goes to the RBD
//     trash and keeps serving them; a snapshot deleted while clones hang
//     from it stays as a tombstoned RBD snapshot; whenever a clone goes,
//     its parent chain is collected (dead snapshots removed, empty trashed
//     images purged).
//
//   - flatten.go: a new clone whose chain is deeper than maxCloneDepth is
//     flattened by a background goroutine, never inside a request and
//     never for a volume a node already uses.
//
//   - cleanup.go: what a failed request made is undone, and every opened
//     image closed, on a context that outlives the request (bounded);
//     a cleanup that fails is logged with what it left, which a retry of
//     the request or a later call picks up.
//
//   - clone.go: clone v2 from a snapshot or (through a temporary
//     snapshot) from a volume.
//
//   - volume.go, snapshot.go: the CSI RPCs, each behind an in-flight
//     guard on its name or id (a concurrent duplicate gets Aborted).
//     Operations that change an image's snapshots or existence
//     (DeleteVolume, CreateSnapshot, DeleteSnapshot, cloning, flattening)
//     also wait for each other on a per-image lock, so DeleteVolume racing
//     CreateSnapshot can neither orphan nor lose a snapshot. The locks are
//     per process: run one active controller (leader election).
//
//   - publish.go: ControllerPublishVolume/ControllerUnpublishVolume
//     attach nothing (the node plugin does, at NodeStageVolume); they
//     keep the image's attachments record (internal/csiceph), refuse a
//     single-node volume published elsewhere with FailedPrecondition, and
//     remember unpublished nodes as withdrawn so that the next node can
//     fence a holder the CO took the volume from (see nodeserver). Node
//     ids are checked against Options.Nodes (in Kubernetes the CSINode
//     objects, package internal/kubenodes).
//
// Not offered: ListVolumes, GetCapacity.
package controllerserver
