// Package messenger is one msgr2.1 client connection to a Ceph daemon (a
// monitor, an OSD or a manager): it dials, runs the handshake, and then
// moves [Message] envelopes in both directions.
//
// It imports the wire codec (package msgr2), the encoding primitives and
// the entity types, and nothing above them: authentication protocols plug
// in through [AuthClient] (package cephx implements it; [NoneAuth] is the
// trivial auth "none"), and message payloads belong to the mon and osd
// packages.
//
// # Handshake
//
//	TCP connect
//	  ──► banner "ceph v2\n" ◄── banner            (both sent at once)
//	  ──► HELLO (client, address dialled)
//	  ◄── HELLO (peer type, our address as seen by the peer)
//	  ──► AUTH_REQUEST ┐
//	  ◄── AUTH_REPLY_MORE ──► AUTH_REQUEST_MORE    (zero or more rounds)
//	  ◄── AUTH_DONE (global id, con mode)  | AUTH_BAD_METHOD → error
//	  (secure mode starts here when con mode = secure)
//	  ──► AUTH_SIGNATURE  HMAC-SHA256(session key, bytes received)
//	  ◄── AUTH_SIGNATURE  checked against the bytes we sent
//	  ──► CLIENT_IDENT
//	  ◄── SERVER_IDENT | IDENT_MISSING_FEATURES | WAIT → error
//	OPEN: MESSAGE, ACK, KEEPALIVE2, KEEPALIVE2_ACK
//
// [Dial] runs all of this on the caller's goroutine; cancelling its
// context sets the socket deadline so the handshake stops at once. Every
// error names the address dialled.
//
// # Open connection
//
// An open [Conn] has one reader goroutine, which calls Config.Dispatch for
// every message in order, and one writer goroutine, which sends queued
// messages (numbering them 1, 2, … and piggy-backing the last sequence
// received) and KEEPALIVE2 every KeepaliveInterval. It sends no ACK
// frames: the sessions are lossy, so the server keeps no messages for
// replay and an ACK would only cost it a wakeup per reply (librados acks
// lossless sessions only). A connection that receives nothing for
// KeepaliveTimeout faults with [ErrKeepalive].
//
// The writer sends whatever is queued (up to 32 messages or about 1 MiB)
// with a single writev; in crc mode the message payloads are not copied.
// Received front, middle and data segments are freshly allocated and
// belong to the Dispatch callee.
//
// Client sessions with mons and OSDs are lossy: on any fault the
// connection is dead, Config.OnFault is called exactly once, Done is
// closed, pending Send calls return the fault, and the caller dials again.
// Session resumption frames from a server are errors.
package messenger
