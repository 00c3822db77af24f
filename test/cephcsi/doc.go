// Package cephcsi holds what a real ceph-csi wrote, for tests that take its
// volumes over: the State a capture run recorded (test/cephcsi/capture, the
// ceph-csi RBD controller built by build.sh driven through the CSI API), a
// Dump of pools through the rados/rbd CLIs, Replay of a captured layout into
// a live test cluster through this project's rados and rbd packages, and
// Compare of the two. Handles and journal values that embed a pool id are
// re-encoded for the replayed pools (Replayed); everything else is byte for
// byte what ceph-csi left. The formats are described in
// docs/ceph-csi-compat.md; how to regenerate a capture in README.md.
package cephcsi
