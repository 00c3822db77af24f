// Package hostfwd is the test VM's bridge to services on the host: a TCP
// forwarder that listens on the guest's loopback and relays each connection
// to the same port on the host (10.0.2.2 under qemu's user network).
//
// It exists because the throw-away Ceph clusters of test/cluster advertise
// 127.0.0.1 addresses in their monmap and osdmap. Inside the guest
// 127.0.0.1 is the guest itself, so a client that learns an OSD address from
// the osdmap would dial nothing. With the forwarder listening on
// 127.0.0.1:PORT for every mon and OSD port of the cluster, the addresses the
// cluster hands out work unchanged in the guest.
//
// The package knows nothing about Ceph: it takes a list of ports (see
// ParsePorts for the "7500-7549,7600" syntax) and relays bytes. It never
// logs; Stats reports what it did.
package hostfwd
