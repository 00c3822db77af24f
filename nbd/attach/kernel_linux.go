//go:build linux

package attach

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

type netlinkKernel struct{}

// NetlinkKernel is the real kernel: the nbd driver's generic netlink
// interface (the Kernel a Config without one uses).
func NetlinkKernel() Kernel { return netlinkKernel{} }

func (netlinkKernel) Connect(ctx context.Context, socks []*os.File, p ConnectParams) (int, error) {
	opts := []nbdnl.Option{
		nbdnl.WithIndex(p.Index),
		nbdnl.WithSize(uint64(p.Size)),
		nbdnl.WithBlockSize(uint64(p.BlockSize)),
		nbdnl.WithServerFlags(p.ServerFlags),
		// No DisconnectOnClose, no DestroyOnDisconnect: only Detach ends a
		// device.
		nbdnl.WithClientFlags(0),
		nbdnl.WithDeadConnTimeout(p.DeadConnTimeout),
		nbdnl.WithBackendIdentifier(p.BackendID),
	}
	if p.Timeout > 0 {
		opts = append(opts, nbdnl.WithTimeout(p.Timeout))
	}
	return nbdnl.Connect(ctx, socks, opts...)
}

func (netlinkKernel) Reconfigure(ctx context.Context, index int, socks []*os.File, p ReconfigureParams) error {
	opts := []nbdnl.Option{nbdnl.WithBackendIdentifier(p.BackendID)}
	if p.Size > 0 {
		opts = append(opts, nbdnl.WithSize(uint64(p.Size)))
	}
	if p.DeadConnTimeout > 0 {
		opts = append(opts, nbdnl.WithDeadConnTimeout(p.DeadConnTimeout))
	}
	return nbdnl.Reconfigure(ctx, index, socks, opts...)
}

func (netlinkKernel) Disconnect(ctx context.Context, index int) error {
	return nbdnl.Disconnect(ctx, index)
}

func (netlinkKernel) Owns(ctx context.Context, index int, id string) (bool, error) {
	devs, err := nbdnl.Status(ctx, index)
	if err != nil {
		return false, err
	}
	if len(devs) == 0 || !devs[0].Connected {
		return false, nil
	}
	b, err := nbdnl.BackendIdentifier(index)
	if err != nil {
		return false, err
	}
	return b == id, nil
}

// SetCheckInterval implements CheckIntervaler: it writes the device's
// block-layer request timeout (/sys/block/nbdN/queue/io_timeout, in
// milliseconds). The nbd driver's own timeout (NBD_ATTR_TIMEOUT) stays as
// it was connected.
func (netlinkKernel) SetCheckInterval(index int, d time.Duration) error {
	p := "/sys/block/nbd" + strconv.Itoa(index) + "/queue/io_timeout"
	return os.WriteFile(p, []byte(strconv.FormatInt(d.Milliseconds(), 10)), 0)
}
