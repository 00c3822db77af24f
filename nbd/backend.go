package nbd

import "context"

// Backend is the block device an export serves. Offsets and lengths are in
// bytes and always lie within [0, Size()) when the server calls them.
// Implementations must be safe for concurrent use: the server issues
// requests from several connections and pipelined requests in parallel.
//
// Errors may wrap syscall.Errno values (EIO, ENOSPC, EPERM, EINVAL, ...);
// the server maps them to NBD error codes.
type Backend interface {
	// ReadAt fills p from offset off.
	ReadAt(ctx context.Context, p []byte, off int64) error
	// WriteAt writes p at offset off; with fua the data must be durable
	// when WriteAt returns.
	WriteAt(ctx context.Context, p []byte, off int64, fua bool) error
	// Flush makes all completed writes durable.
	Flush(ctx context.Context) error
	// Discard releases the range (NBD_CMD_TRIM); reads of it afterwards may
	// return zeroes or the old data.
	Discard(ctx context.Context, off, length int64) error
	// WriteZeroes makes the range read back as zeroes. With noHole the
	// backend must allocate (not punch a hole).
	WriteZeroes(ctx context.Context, off, length int64, noHole bool) error
	// Size returns the current export size in bytes.
	Size() int64
}
