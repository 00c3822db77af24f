// Package cephx is the client side of Ceph's cephx authentication protocol:
// keys and their ciphers, keyring files, the msgr2 authentication exchanges
// with monitors and services, and ticket renewal over a mon session.
//
// It is pure: no sockets, no goroutines, no logging. It sits above
// rados/encoding and rados/entity and below the messenger's users; the
// messenger drives it through its AuthClient interface, which [MonAuth] and
// [ServiceAuth] satisfy structurally (this package does not import the
// messenger).
//
// # Keys
//
// A [CryptoKey] is a Ceph secret (u16 type, utime created, u16 length,
// secret), written base64 in keyrings. Two types exist:
//
//   - aes (1): AES-128-CBC with the fixed IV "cephsageyudagreg" and PKCS#7
//     padding;
//   - aes256k (2, Squid 19.2.6+ / Tentacle 20.2.4+): RFC 8009
//     aes256-cts-hmac-sha384-192 with Ceph's key usage numbers, implemented
//     here with the standard library and tested against the RFC's vectors.
//
// Everything cephx encrypts sits in an envelope (u8 1, le64 magic
// 0xff009cad8826aa55, payload): [Seal] and [Open].
//
// # Per-client state
//
// A [Client] holds what outlives one connection: the entity name and key,
// the global_id the mons assigned, the server challenge of the current mon
// session, and one [Ticket] per service (AUTH, MON, OSD, optionally MGR),
// each with its expiry on the local monotonic clock.
//
//	c := cephx.NewClient(name, key)
//	// mon connection attempt (fresh login, or global_id reclaim when we
//	// hold a global_id and an unexpired AUTH ticket)
//	messenger.Dial(ctx, messenger.Config{Auth: c.MonAuth(), ...})
//	// OSD/MGR connection attempt, with the newest service ticket
//	messenger.Dial(ctx, messenger.Config{Auth: c.ServiceAuth(entity.TypeOSD), ...})
//	// on the live mon session, when c.RenewAfter() has passed:
//	proto, payload, err := c.BuildRenewal()     // → MAuth
//	err = c.HandleRenewal(result, gid, payload) // ← MAuthReply
//
// All payloads exchanged with the messenger and the mon client are the
// contents of the auth bufferlists, without the u32 length that frame and
// message encodings put in front of them. The file comments of monauth.go,
// authorizer.go and renew.go give their exact layouts.
//
// # Errors
//
// Errors wrap the sentinels of errors.go: [ErrPermission] when the peer
// refused our credentials (wrong key, unknown entity, rejected reclaim or
// authorizer), [ErrDecrypt] when something does not decrypt (usually the
// wrong key), [ErrNoTicket] when a ticket is missing or expired,
// [ErrProtocol] for malformed input, [ErrBadKey] and [ErrKeyring] for bad
// key material.
package cephx
