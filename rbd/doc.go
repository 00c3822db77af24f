// Package rbd implements RBD image format 2 on top of the pure-Go rados
// client: image create/open/resize/remove, striped I/O, snapshots, clone v2,
// flatten, trash, exclusive lock and object map — interoperable with librbd.
//
// BUG(rbd): not implemented yet; it needs the OSD client.
package rbd
