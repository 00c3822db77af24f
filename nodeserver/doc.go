// Package nodeserver implements the CSI Node service: it attaches images by
// serving them over NBD from inside the plugin process (package nbd), then
// formats and mounts them with k8s.io/mount-utils.
//
// BUG(csi): not implemented yet.
package nodeserver
