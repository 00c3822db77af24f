// Package memory is a sparse in-memory [nbd.Backend] for tests, demos and
// benchmarks of the NBD server.
//
// Data lives in fixed-size chunks allocated on first write; ranges never
// written, trimmed or zeroed read back as zeroes and take no memory.
// Everything is lost when the process exits, so Flush has nothing to do.
//
// Zeroing is fast (NBD_CMD_FLAG_FAST_ZERO succeeds) unless NO_HOLE is
// requested: punching out chunks costs nothing, while zeroing without holes
// must allocate and clear memory like a write.
package memory
