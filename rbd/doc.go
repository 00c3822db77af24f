// Package rbd implements RBD image format 2 on top of the pure-Go RADOS
// client, interoperable with librbd and krbd.
//
// Layers inside the package, bottom up:
//
//   - cls_*.go: argument encoders and reply decoders for the OSD object
//     classes "rbd" (cls_rbd) and "lock" (cls_lock). They know bytes only;
//     every layout is checked against Ceph's cls_rbd_client.cc and
//     cls_rbd_types.cc and, where the cluster stores the same encoding, against
//     bytes captured from real clusters (testdata/<release>/, written by
//     testdata/capture.sh with the clusters' own rbd CLI).
//   - names.go, features.go, striper.go, objectmap.go: object naming, feature
//     bits and the incompatibility checks, the file-to-object striper
//     (Ceph's Striper::file_to_extents), and the object map BitVector<2>
//     on-disk format with its CRCs.
//   - ioctx.go: the narrow set of RADOS operations rbd needs (compound ops on
//     one object, with a snap context or a read snapshot; watch/notify;
//     self-managed snapshot ids), as an unexported interface the rados
//     package satisfies.
//   - image.go, io.go: image management (Create, Open, Stat, Resize, Remove)
//     and the data path (ReadAt, WriteAt, Discard, WriteZeroes) against that
//     interface.
//
// Format 1 images are refused. Images with features this package cannot
// honour are refused with an *FeatureError naming them: JOURNALING,
// MIGRATING, NON_PRIMARY and DIRTY_CACHE for writers (as krbd does), and any
// unknown incompatible bit for everyone.
package rbd
