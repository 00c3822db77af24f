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
// # Objects
//
// Conn also keeps the cluster's OSDMap current (osd_wiring.go: full maps
// decoded, incrementals applied in epoch order with their crcs checked,
// missing epochs requested from the monitors). Maps come from the monitor
// subscription and also from OSDs, which share newer epochs with a client
// whose requests carry an older one; both feed the same tracker. Conn owns
// the OSD client. Pools are looked up in that
// map and changed with monitor commands (pool.go: PoolCreate, PoolDelete,
// ApplicationEnable; self-managed snapshot ids through the pool op).
// An IOContext (ioctx.go) addresses objects in one pool and namespace:
//
//	io, err := conn.OpenIOContext(ctx, "rbd")
//	io.SetNamespace("csi")
//	err = io.WriteFull(ctx, "obj", data)
//	b, err := io.Read(ctx, "obj", 0, 0)
//
// WriteOp and ReadOp (op.go) build compound operations that apply
// atomically. OSD errors are syscall.Errno values reachable with errors.Is
// (ENOENT, EEXIST, ENODATA, ECANCELED, EBUSY...); a full pool or a pool
// over its quota fails writes at once with an error matching both
// syscall.ENOSPC and ErrPoolFull (and syscall.EDQUOT for a quota). On a
// paused cluster (`ceph osd pause`) operations wait, as with librados,
// for a map that lifts the pause; one whose context ends first fails with
// an error matching ErrPaused and the context's error. Operations on a PG
// with no OSD up wait for a newer map, bounded by their context too.
// Every blocking call takes a context.
//
// Layering: rados glues config (settings), cephx (keys, tickets), mon (the
// monitor session), osdmap (placement) and osd (the object client). RBD
// builds on Conn and IOContext.
package rados
