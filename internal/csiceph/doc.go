// Package csiceph is what the CSI Controller and Node services share about
// reaching Ceph: the volume and snapshot ids, the clusters file, the
// secrets and StorageClass parameters, the access modes an RBD image can
// honour, the one table that turns errors into gRPC codes, and the one
// pool of cluster connections with its health checks. The services
// (controllerserver, nodeserver) import it and never each other.
//
//   - ids.go: volume and snapshot ids, versioned URL-safe strings that
//     carry the cluster, the pool id and the image (and snapshot) name. The
//     version prefix picks the codec, so another handle format can be
//     added beside v1/s1.
//   - clusters.go: the clusters file (ceph-csi's config.json subset).
//   - params.go: secrets (userID/userKey), StorageClass parameters and the
//     volume context keys the node reads.
//   - caps.go: access-mode checks.
//   - attachments.go: who uses a volume, in the image's metadata: the
//     controller's publications (and withdrawals) and each node's stage
//     record (the Ceph client holding the image there); fencing reads
//     both.
//   - codes.go: the errors of the CSI layer itself and Code, the only
//     place an error becomes a gRPC code (codes_test.go lists every typed
//     error of rados, rbd and cephx the services can meet, with its code).
//   - pool.go: one rados.Conn per (cluster, user, key). A dial runs
//     outside the pool's lock, once per key however many requests wait
//     for it, each caller waiting no longer than its own context; an
//     on-connect hook runs before anyone gets the connection (the node
//     records the client there). A connection-level failure drops the
//     connection so the next call redials.
//   - health.go: session health (a monitor command within 5 seconds) and
//     monitor reachability for clusters with no session yet.
//
// The package never logs.
package csiceph
