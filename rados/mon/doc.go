// Package mon is the client side of the Ceph monitor protocol: the
// messages a client exchanges with the monitors (one file per message),
// the MonMap decoder, the feature bits a client advertises, and Client,
// which keeps one authenticated session with some monitor of the cluster.
//
// Layering: mon sits on top of rados/messenger (one msgr2 connection) and
// rados/encoding; it knows nothing of cephx crypto. Authentication is
// plugged in through the Authenticator interface (implemented by the
// cephx adapter in package rados, or NoAuth for clusters with auth none).
// OSDMaps are handed up raw (epochs and blobs) through a callback; decoding
// them is the osdmap package's job.
//
// The Client
//
//   - hunts for a monitor: it tries the known monitors in random order,
//     each attempt bounded by its own timeout, with a growing pause between
//     rounds (the kernel's 3 s x2 up to x10 is too slow for a CLI, so the
//     first rounds are quick);
//   - on a session fault (read/write error, keepalive timeout reported by
//     the messenger) it hunts again, re-authenticates reclaiming its
//     global_id, re-subscribes (monmap always, osdmap if asked, from
//     have+1) and resends every pending request;
//   - checks that every monitor it reaches belongs to the same fsid;
//   - renews cephx tickets over the live session with MAuth when the
//     Authenticator says they are due (75 % of their lifetime);
//   - answers commands (MMonCommand), version queries (MMonGetVersion) and
//     pool operations (MPoolOp), matching replies by tid;
//   - drops messages it does not know instead of failing.
package mon
