// Package rbdbackend serves RBD images over NBD: it adapts an *rbd.Image
// to nbd.Backend. It is the only place that knows both sides; package nbd
// knows no Ceph and package rbd knows no NBD.
//
//	b, err := rbdbackend.Open(ctx, conn, "rbd/vol1@snap", false)
//	defer b.Close(ctx)
//	srv.AddExport(&nbd.Export{Name: "vol1", Backend: b, ReadOnly: b.ReadOnly()})
//
// Mapping of the NBD commands:
//
//   - READ, WRITE: rbd.Image ReadAt/WriteAt. Every RADOS write is
//     acknowledged only once it is durable on the OSDs, so FUA needs
//     nothing extra and FLUSH has nothing to flush (there is no client-side
//     cache).
//   - TRIM: rbd.Image Discard (whole objects are deleted).
//   - WRITE_ZEROES: rbd.Image WriteZeroes, which may deallocate; with
//     NO_HOLE the zeroes are written as data instead, so the range stays
//     allocated. FAST_ZERO succeeds only without NO_HOLE.
//   - Multi-conn is advertised: rbd.Image is safe for concurrent use and
//     a flush on any connection covers the writes of all of them, because
//     none is cached.
//
// Snapshots (POOL/IMAGE@SNAP) are opened read-only and every write fails
// with EPERM.
//
// Encrypted images (LUKS, librbd's encryption format or dm-crypt's):
// Backend.Encrypt unlocks the header through rbd/encryption and the export
// then serves the plaintext (the image minus the header area). Zeroes are
// then always written as data (FastZero false), and PreferredBlockSize is
// the encryption sector, the I/O size that needs no read-modify-write.
package rbdbackend
