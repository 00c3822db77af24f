// Package rados is the public entry point of csi-gorbd's pure-Go Ceph
// client: Connect opens an authenticated monitor session described by a
// Config (a ceph.conf file, a keyring, or explicit monitors, user and key
// as ceph-csi passes them), and Conn runs monitor commands.
//
//	conn, err := rados.Connect(ctx, rados.Config{
//		Monitors: []string{"10.0.0.1:3300", "10.0.0.2:3300"},
//		User:     "admin",
//		Key:      "AQ...==",
//	})
//	out, status, err := conn.MonCommand(ctx, `{"prefix":"status","format":"json"}`, nil)
//
// Errors are typed: ErrPermission (wrong key or unknown user; reported
// within one round trip, no retries), ErrSecureRequired (the cluster only
// accepts secure mode and crc was requested), ErrNoMonitor (no monitor
// reachable before the context deadline; the message names every address
// tried), and *MonError for a monitor's negative answer, usable with
// errors.Is(err, syscall.ENOENT) and friends.
//
// Layering: rados glues config (settings), cephx (keys, tickets) and mon
// (the monitor session). The OSD client and RBD build on Conn.
package rados
