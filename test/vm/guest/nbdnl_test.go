package guest

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// pair serves exp on one end of a socketpair and returns the other end for
// the kernel plus a channel with the server's result.
func pair(t *testing.T, ctx context.Context, exp *nbd.Export) (*os.File, <-chan error) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	of := os.NewFile(uintptr(fds[0]), "server")
	c, err := net.FileConn(of)
	of.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- nbd.ServeTransmission(ctx, c, exp, nil) }()
	return os.NewFile(uintptr(fds[1]), "kernel"), done
}

// TestNetlink drives nbdnl directly: CONNECT with a chosen index and a
// backend identifier, STATUS, sysfs, EBUSY on a used index, EINVAL for a
// RECONFIGURE without the identifier, online resize, DISCONNECT.
func TestNetlink(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 2*time.Minute)
	const index, size = 5, 64 << 20
	be := memory.New(size)
	exp := &nbd.Export{Name: "nl", Backend: be}
	sock, served := pair(t, ctx, exp)

	got, err := nbdnl.Connect(ctx, []*os.File{sock},
		nbdnl.WithIndex(index), nbdnl.WithSize(size), nbdnl.WithBlockSize(4096),
		nbdnl.WithServerFlags(uint64(exp.TransmissionFlags(false))),
		nbdnl.WithDeadConnTimeout(30*time.Second), nbdnl.WithBackendIdentifier("vol-netlink"))
	sock.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got != index {
		t.Fatalf("Connect gave nbd%d, want nbd%d", got, index)
	}
	devs, err := nbdnl.Status(ctx, index)
	if err != nil || len(devs) != 1 || !devs[0].Connected || devs[0].Index != index {
		t.Fatalf("Status(%d) = %+v, %v", index, devs, err)
	}
	logRawStatus(t)
	all, err := nbdnl.Status(ctx, -1)
	if err != nil || len(all) < 8 {
		t.Errorf("Status(all) = %d devices, %v; want >= nbds_max=8", len(all), err)
	}
	if id, err := nbdnl.BackendIdentifier(index); err != nil || id != "vol-netlink" {
		t.Errorf("sysfs backend = %q, %v", id, err)
	}
	// sysfs pid is the thread that connected; its thread group is us.
	if tgid, err := nbdnl.PID(index); err != nil || tgid != os.Getpid() {
		t.Errorf("sysfs pid -> process %d, %v; want %d", tgid, err, os.Getpid())
	}
	if n, err := nbdnl.SizeBytes(index); err != nil || n != size {
		t.Errorf("sysfs size = %d, %v; want %d", n, err, size)
	}

	// The device works: write through the kernel, read it in the backend.
	sh(t, "echo -n kernel-was-here | dd of=/dev/nbd5 bs=4096 conv=sync,fsync oflag=direct 2>/dev/null")
	buf := make([]byte, 15)
	be.ReadAt(ctx, buf, 0)
	if string(buf) != "kernel-was-here" {
		t.Errorf("backend holds %q after a kernel write", buf)
	}

	// A used index is refused.
	sock2, _ := pair(t, ctx, exp)
	_, err = nbdnl.Connect(ctx, []*os.File{sock2}, nbdnl.WithIndex(index), nbdnl.WithSize(size))
	sock2.Close()
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("Connect on a used index: %v, want EBUSY", err)
	}
	// RECONFIGURE must repeat the backend identifier.
	for _, id := range []string{"", "another-volume"} {
		err = nbdnl.Resize(ctx, index, 2*size, id)
		if !errors.Is(err, unix.EINVAL) {
			t.Errorf("Resize with identifier %q: %v, want EINVAL", id, err)
		}
	}
	// Online resize through NBD_CMD_RECONFIGURE + NBD_ATTR_SIZE_BYTES.
	if err := be.Resize(2 * size); err != nil {
		t.Fatal(err)
	}
	if err := nbdnl.Resize(ctx, index, 2*size, "vol-netlink"); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	if n, _ := nbdnl.SizeBytes(index); n != 2*size {
		t.Errorf("size after resize %d, want %d", n, 2*size)
	}
	if out := sh(t, "blockdev --getsize64 /dev/nbd5"); out != "134217728\n" {
		t.Errorf("blockdev --getsize64 after resize: %q", out)
	}
	// The grown part is usable.
	sh(t, "dd if=/dev/zero of=/dev/nbd5 bs=1M seek=100 count=1 conv=fsync 2>/dev/null")

	if err := nbdnl.Disconnect(ctx, index); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("server after disconnect: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("server still running after DISCONNECT")
	}
	waitDisconnected(t, ctx, index)
	// Disconnecting an idle device is fine.
	if err := nbdnl.Disconnect(ctx, index); err != nil {
		t.Errorf("second Disconnect: %v", err)
	}
	// The kernel picks a device when no index is given.
	sock3, served3 := pair(t, ctx, exp)
	any, err := nbdnl.Connect(ctx, []*os.File{sock3}, nbdnl.WithSize(size))
	sock3.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel picked nbd%d", any)
	if err := nbdnl.Disconnect(ctx, any); err != nil {
		t.Fatal(err)
	}
	<-served3
	waitDisconnected(t, ctx, any)
}

// logRawStatus logs the kernel's raw NBD_CMD_STATUS reply attributes (hex)
// so they can be kept as a unit-test vector (nbd/nbdnl/testdata).
func logRawStatus(t *testing.T) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fam, err := c.GetFamily("nbd")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Execute(genetlink.Message{Header: genetlink.Header{Command: 5, Version: 1}},
		fam.ID, netlink.Request|netlink.Acknowledge)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("raw STATUS: %d replies, %v", len(msgs), err)
	}
	t.Logf("raw STATUS reply (kernel %s): %s", strings.TrimSpace(sh(t, "uname -r")), hex.EncodeToString(msgs[0].Data))
}

func waitDisconnected(t *testing.T, ctx context.Context, index int) {
	t.Helper()
	for {
		devs, err := nbdnl.Status(ctx, index)
		if err == nil && len(devs) == 1 && !devs[0].Connected {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nbd%d still connected: %+v %v", index, devs, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
