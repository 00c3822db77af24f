// Package msgr2 is the wire codec of Ceph's messenger protocol v2.1
// ("msgr2.1", msgr2 feature REVISION_1): the banner, the 32-byte frame
// preamble, segments and epilogues in crc mode and in secure mode
// (AES-128-GCM), and one file per control frame payload.
//
// It is a pure codec: it reads from an [io.Reader], hands back byte slices
// to write, and knows nothing of sockets, goroutines, contexts or
// authentication protocols. The connection state machine lives in
// package messenger.
//
// # Frames
//
// A frame is a preamble (tag, up to four segment lengths, crc32c) followed
// by its segments. Control frames (HELLO, AUTH_*, *_IDENT, KEEPALIVE2, ACK,
// ...) carry one segment; MESSAGE frames carry four: the 41-byte
// [MessageHeader], front, middle and data. Trailing empty segments are not
// counted in the preamble.
//
// In crc mode (rev1) segment 0 is followed by its crc32c, and frames with
// more than one segment end with a 13-byte epilogue (late status + three
// crcs). In secure mode the preamble and the first 48 bytes of segment 0 are
// sealed as one AES-128-GCM operation (96 bytes on the wire); the rest of
// segment 0, padded to 16 bytes, is a second operation; segments 1..3, each
// padded to 16 bytes, plus a 16-byte epilogue block are a third. Every GCM
// operation uses the next nonce: a little-endian u32 fixed part and a u64
// counter that is incremented after each operation, separately for the
// receive and transmit directions.
//
// [Writer] assembles frames and [Reader] disassembles them; both switch to
// secure mode with EnableSecure once authentication has produced a
// connection secret. In crc mode a Writer can leave the crcs of large
// segments to [Writer.Emit], which sums them chunk by chunk as it hands
// the chunks to the caller's write function (SetDeferCRC), so a 4 MiB
// payload starts flowing before its crc32c is known. Every length read from the wire is checked against
// [Limits] before anything is allocated.
//
// Compression (msgr2 feature bit 1) and the rev0 frame format are not
// implemented and never advertised; msgr v1 is detected only to report it.
package msgr2
