// Package controllerserver implements the CSI Controller service: it
// provisions, snapshots, clones, expands and deletes RBD images through the
// pure-Go rbd package, idempotently by name via a journal kept in RADOS.
//
// BUG(csi): not implemented yet.
package controllerserver
