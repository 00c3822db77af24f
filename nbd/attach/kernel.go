package attach

import (
	"context"
	"os"
	"time"
)

// Kernel is the part of the kernel's nbd driver the manager uses. The real
// one (the default) is package nbdnl; the interface exists so the manager
// does not depend on how the kernel is reached.
type Kernel interface {
	Connect(ctx context.Context, socks []*os.File, p ConnectParams) (int, error)
	Reconfigure(ctx context.Context, index int, socks []*os.File, p ReconfigureParams) error
	Disconnect(ctx context.Context, index int) error
	// Owns reports whether device index is connected with backend
	// identifier id.
	Owns(ctx context.Context, index int, id string) (bool, error)
}

// CheckIntervaler is implemented by a Kernel that can set how often the
// block layer looks at a request in flight (the real one: sysfs
// queue/io_timeout). See Manager's use of DefaultCheckInterval.
type CheckIntervaler interface {
	SetCheckInterval(index int, d time.Duration) error
}

// ConnectParams are the attributes of NBD_CMD_CONNECT.
type ConnectParams struct {
	Index           int // -1: any
	Size            int64
	BlockSize       int64
	ServerFlags     uint64
	Timeout         time.Duration
	DeadConnTimeout time.Duration
	BackendID       string
}

// ReconfigureParams are the attributes of NBD_CMD_RECONFIGURE; zero values
// are left out.
type ReconfigureParams struct {
	BackendID       string
	Size            int64
	DeadConnTimeout time.Duration
}
