// Package nbd is a server for the Network Block Device protocol
// (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md).
//
// It exports [Backend] implementations to NBD clients: the Linux kernel
// (through a socket handed over by netlink, see [ServeTransmission]), qemu,
// libnbd tools (nbdinfo, nbdcopy) and fio's nbd engine. The package knows
// nothing about where the blocks live; the RBD backend lives elsewhere.
//
// # Phases
//
// An NBD session has two phases. In the handshake the server greets the
// client with the fixed newstyle greeting and the client haggles options
// (NBD_OPT_GO, NBD_OPT_INFO, NBD_OPT_LIST, NBD_OPT_STRUCTURED_REPLY, ...)
// until it picks an export. [Server.ServeConn] runs both phases; the
// handshake code is in handshake.go and the option codec in option.go.
//
// In the transmission phase the client sends requests (READ, WRITE, FLUSH,
// TRIM, WRITE_ZEROES, DISC) and the server answers each with a simple reply
// or, when negotiated, structured reply chunks. [ServeTransmission] runs
// only this phase, which is all the kernel speaks.
//
// # Concurrency
//
// Each connection runs one reader goroutine that decodes requests and reads
// write payloads, a fixed pool of workers that call the backend
// concurrently, and one writer that serialises replies through a buffered
// writer; replies are matched to requests by their cookie (handle), so they
// may leave in any order. The bytes held by requests in flight are bounded
// per connection ([Options.MaxInFlight]); the reader stops reading when the
// bound is reached. Several connections may serve the same export at once
// (NBD_FLAG_CAN_MULTI_CONN is advertised when the backend says its Flush
// covers writes from every connection, see [MultiConnBackend]); a Server
// can cap them ([Server.MaxConnsPerExport]) and bound their bytes in
// flight together ([Server.MaxInFlightPerExport]). Server.mu guards the
// exports and the per-export counts; the budgets have locks of their own,
// taken with no other lock held.
//
// # QoS and observation
//
// An export may carry a [qos.Limiter] (Export.Limiter): a worker waits
// for it before calling the backend with a read, write, trim or
// write-zeroes (flushes pass), so a throttled request holds one worker
// and its payload, and the in-flight bounds above push back on the
// client. The limiter sleeps on runtime timers in the worker itself; no
// goroutine is added per export. An export may also carry an [Observer]
// (Export.Observer), told about every request with its length, latency
// and time spent throttled (the per-volume metrics); without one nothing
// is timed.
//
// # Errors
//
// Backend errors are mapped to NBD error numbers through the syscall.Errno
// they wrap (see [ErrnoOf]); anything else becomes EIO. Requests outside
// the export, too large, or writes to a read-only export are failed without
// calling the backend. Protocol violations that make the stream impossible
// to follow (bad request magic, a write payload too large to skip) end the
// connection with a [*ProtocolError].
//
// # Limits
//
// Every length read from the network is checked before anything is
// allocated: option payloads are capped (64 KiB), names at 4096 bytes, the
// number of options per handshake is capped, and request payloads at the
// export's maximum payload size (32 MiB by default).
package nbd

// BUG(nbd): NBD_OPT_STARTTLS, meta contexts (NBD_CMD_BLOCK_STATUS),
// NBD_CMD_CACHE, NBD_CMD_RESIZE and extended headers are not supported;
// clients are told so with NBD_REP_ERR_UNSUP or NBD_EINVAL.
