// Package osd is the RADOS object client: it builds compound operations on
// objects, sends them to the primary OSD of each object's placement group as
// MOSDOp messages, and matches the MOSDOpReply answers.
//
// The layer sits on top of the messenger (one msgr2 connection per OSD),
// the OSDMap (placement: object → pg → acting primary) and an authorizer
// (cephx service tickets). It reaches them only through the narrow hooks in
// [Config]: a dial function, map updates pushed in with [Client.HandleMap]
// and a callback to ask the monitors for a newer map. It knows nothing of
// monitors, cephx or RBD. [MessengerDialer] (dial.go) is the production
// DialFunc: msgr2 via package messenger, with an authorizer per OSD.
//
// Wiring (package rados): decode or apply every MOSDMap from the monitor
// session and pass the result to [Client.HandleMap]; let
// Config.RequestMap re-subscribe the monitor session; let
// Config.OnMapMessage feed the MOSDMaps OSDs send into the same tracker;
// build the dialer
// with the mon session's global id and cephx ServiceAuth(TypeOSD).
//
// # Wire messages
//
// One file per message: msg_osd_op.go (MOSDOp v8, type 42), msg_osd_op_reply.go
// (MOSDOpReply, type 43), msg_watch_notify.go (MWatchNotify, type 44) and
// msg_osd_backoff.go (MOSDBackoff, type 61). Their building blocks (pg_t,
// spg_t, hobject_t, object_locator_t, the packed ceph_osd_op) live in
// types.go and op.go. Op codes and flags are those of Ceph's
// src/include/rados.h.
//
// # Operations
//
// A [Request] carries a list of [Op] values built by the constructors in
// ops_*.go (Read, Write, Call, OmapGetVals, Watch, ...). After the request
// completes each Op holds its own return value and output bytes, which the
// matching Parse* function decodes.
//
// # Client
//
// [Client.Do] computes the target from the current map, queues the request
// on the OSD's session (dialling it when needed) and waits for the reply or
// for its context. Every request keeps its tid for its whole life, so a
// resend after a map change, a reconnect or a backoff carries the same
// request id and the OSD deduplicates it. Requests with no up primary wait
// (bounded by their context) for a newer map. Cluster or pool FULL and a
// quota fail writes at once with ENOSPC/EDQUOT. The pauserd/pausewr flags
// hold requests back unsent, as Objecter does, until a map lifts them; a
// request whose context ends first fails with an error matching ErrPaused.
//
// Watches ([Client.Watch]) are re-established after reconnects and target
// changes; notifies are delivered to a callback and acknowledged with its
// answer.
package osd
