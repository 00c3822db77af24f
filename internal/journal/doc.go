// Package journal reads and writes the omap journal ceph-csi keeps for
// its RBD volumes and snapshots, which is csi-gorbd's too, so that either
// driver finds the other's volumes (docs/ceph-csi-compat.md, section 2).
//
// All objects are empty RADOS objects with string omap values, in the
// pool (and RADOS namespace) of the image they describe:
//
//	csi.volumes.<instance>   csi.volume.<request name> → <uuid>
//	csi.volume.<uuid>        csi.volname, csi.imagename, csi.imageid,
//	                         csi.volume.owner, ...
//	csi.snaps.<instance>     csi.snap.<request name> → <uuid>
//	csi.snap.<uuid>          csi.snapname, csi.imagename, csi.source,
//	                         csi.imageid, ...
//
// A directory value may also be "<16 hex pool id>/<uuid>" (the image in
// another pool than the journal), and csi-gorbd before this format wrote
// JSON values under the same directory keys: Lookup returns those raw
// (DirValue.Legacy) for the caller to read.
//
// Reserve makes the per-request object and its keys in one exclusive
// create (so it exists whole or not at all), then the directory key; a
// crash in between leaves an object no directory points to, as ceph-csi's
// own order (object, directory, keys) can. Release undoes both.
//
// The package knows RADOS only; it never logs.
package journal
