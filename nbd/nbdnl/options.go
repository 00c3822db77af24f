package nbdnl

import "time"

// IndexAny lets the kernel choose the device index in Connect.
const IndexAny = -1

// config holds the optional attributes of CONNECT and RECONFIGURE.
type config struct {
	index       int
	size        uint64
	blockSize   uint64
	serverFlags *uint64
	clientFlags *ClientFlags
	timeout     *time.Duration
	deadConn    *time.Duration
	backend     string
}

// Option sets one attribute of a Connect or Reconfigure request.
type Option func(*config)

// WithIndex asks for device /dev/nbdN (Connect). Default: IndexAny.
func WithIndex(n int) Option { return func(c *config) { c.index = n } }

// WithSize sets the device size in bytes (required by Connect; with
// Reconfigure it resizes the device online).
func WithSize(bytes uint64) Option { return func(c *config) { c.size = bytes } }

// WithBlockSize sets the logical block size (512..PAGE_SIZE, power of two).
func WithBlockSize(bytes uint64) Option { return func(c *config) { c.blockSize = bytes } }

// WithServerFlags passes the export's NBD transmission flags
// (NBD_FLAG_HAS_FLAGS, READ_ONLY, SEND_FLUSH, ...), as the server would have
// sent them in the handshake.
func WithServerFlags(f uint64) Option { return func(c *config) { c.serverFlags = &f } }

// WithClientFlags sets NBD_CFLAG_* bits. With Reconfigure, flags not given
// are cleared by the kernel, so pass the full set.
func WithClientFlags(f ClientFlags) Option { return func(c *config) { c.clientFlags = &f } }

// WithTimeout sets the per-request timeout (whole seconds). After it the
// kernel considers the connection dead and requeues the request; 0 means the
// block layer default (30 s) with the socket kept.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = &d } }

// WithDeadConnTimeout sets how long I/O waits for a RECONFIGURE once every
// socket of the device is dead, before failing (whole seconds).
func WithDeadConnTimeout(d time.Duration) Option { return func(c *config) { c.deadConn = &d } }

// WithBackendIdentifier tags the device with an identifier (shown in
// /sys/block/nbdN/backend). Reconfigure must repeat it.
func WithBackendIdentifier(id string) Option { return func(c *config) { c.backend = id } }

func buildConfig(opts []Option) config {
	c := config{index: IndexAny}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}
