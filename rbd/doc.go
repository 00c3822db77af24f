// Package rbd implements RBD image format 2 on top of the pure-Go RADOS
// client (package rados), interoperable with librbd and krbd: Create,
// Open/OpenByID, Stat, ReadAt/WriteAt/Discard/WriteZeroes through the
// striper with the image's snap context, Resize, snapshots (ids from the
// monitors), clone v2 with copy-up on write and read-through to the
// parent, and Remove. Writers of images with EXCLUSIVE_LOCK take librbd's
// lock on the header (cookie "auto <watch cookie>", tag "internal") and,
// with OBJECT_MAP, the object map's own lock, and update the map before
// every data change.
//
//	io, _ := conn.OpenIOContext(ctx, "rbd")
//	_, err := rbd.Create(ctx, io, "vol", 1<<30, &rbd.CreateOptions{Features: rbd.FeaturesDefault})
//	img, err := rbd.Open(ctx, io, "vol", nil)
//	defer img.Close(ctx)
//	_, err = img.WriteAt(ctx, data, 0)
//
// Layers inside the package, bottom up:
//
//   - cls*.go: argument encoders and reply decoders for the OSD object
//     classes "rbd" (cls_rbd) and "lock" (cls_lock). They know bytes only;
//     each layout is checked against Ceph's cls_rbd_client.cc,
//     cls_rbd_types.cc and cls_lock_ops.h and, where the cluster stores the
//     same encoding, against bytes captured from Pacific, Reef and Tentacle
//     (testdata/<release>/, written by testdata/capture.sh with each
//     release's own rbd CLI).
//   - names.go, features.go, striper.go, objectmap.go: object naming and
//     image ids, feature bits and the incompatibility checks, the
//     image-to-object striper (Striper::file_to_extents), and the object
//     map's BitVector<2> on-disk format with its CRCs.
//   - store.go: the narrow set of RADOS operations rbd needs (class calls,
//     compound writes as rados.WriteOps built where they are used, reads
//     at a snapshot, watch and notify, self-managed snapshot ids) as an
//     unexported interface; store_rados.go implements it with
//     *rados.IOContext. Code that needs less declares less (trim's
//     dataObjects), so test fakes implement only that.
//   - create.go, open.go, image.go, refresh.go, io.go, resize.go, trim.go,
//     remove.go, snapshot*.go, rollback.go, flatten.go, clone.go, trash.go:
//     the image logic, written against that interface.
//
// An open Image (image.go) holds an immutable imageState, which every header
// refresh publishes whole and the I/O path reads without locks
// (refresh.go), and three state machines: the exclusive lock
// (exclusive_lock.go: UNLOCKED, ACQUIRING, LOCKED, RELEASING), the live
// object map (objectmap_state.go, objectmap_requests.go: NONE, LOCKED,
// LOADED) and the header watch with the background work it starts
// (watch_notify.go), which Close stops and waits for. The Image type's
// comment writes down which lock guards what and the order they are
// taken in.
//
// The exclusive lock is cooperative, as in librbd (exclusive_lock.go,
// watch_notify.go): a writer takes it at Open when free, hands it over
// when another client sends REQUEST_LOCK (draining its writes first), and
// asks for it back on its next write; OpenOptions.Exclusive keeps it
// instead, as krbd "-o exclusive" does, and an Open that finds it held
// fails with a *LockedError naming the owner. A dead owner (no watch left
// on the header, or named by OpenOptions.DeadClients) is blocklisted, then
// its lock broken, once this client has the OSDMap that fences it
// (Blocklist does the same for a caller fencing a watcher of an image
// without the lock). Image.Watchers lists the other users; a NoWatch open
// is none, and never locks. Every opened head watches
// the header and refreshes on HEADER_UPDATE. The lock owner runs the
// maintenance requests others send it (resize, snapshot create and
// remove: remote_ops.go), and a client whose lock request an Exclusive
// owner refuses sends it those instead; other requests are answered
// EOPNOTSUPP, after which librbd takes the lock and runs them itself.
//
// Snapshots quiesce the image's users first, as librbd's do
// (quiesce.go): CreateSnapshot sends QUIESCE to the header's watchers,
// takes the snapshot and sends UNQUIESCE; an image whose user set
// OnQuiesce hooks answers those notifies from `rbd snap create`, `rbd
// group snap create` and ours by holding its I/O, and lets go when told
// or when the hold runs out. Consistency groups (group.go,
// group_snapshot.go, cls_group.go) are librbd's: CreateGroup,
// AddGroupImage, CreateGroupSnapshot (all members quiesced at once, each
// snapshotted in the group namespace), RemoveGroupSnapshot, RemoveGroup;
// a member's snapshot of a group snapshot opens and clones by id
// (OpenOptions.SnapshotID, CloneSnapshotID).
//
// Refused: format 1 images; writing images with JOURNALING, MIGRATING,
// NON_PRIMARY or DIRTY_CACHE; opening anything with an unknown
// incompatible feature (an *FeatureError names the features).
package rbd
