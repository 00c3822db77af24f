// Package driver wires the CSI identity, controller and node services into
// one gRPC server for the csi-gorbd plugin (modes: controller, node, all).
//
// BUG(csi): not implemented yet; it arrives with the CSI driver issue, on top
// of the rbd and nbd packages.
package driver
