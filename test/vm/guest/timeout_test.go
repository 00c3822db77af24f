package guest

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// stallBackend holds writes while stalled: a live but slow server.
type stallBackend struct {
	*memory.Backend
	stalled atomic.Bool
	mu      sync.Mutex
	release chan struct{}
}

func (b *stallBackend) WriteAt(ctx context.Context, p []byte, off int64, fua bool) error {
	if b.stalled.Load() {
		b.mu.Lock()
		ch := b.release
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return b.Backend.WriteAt(ctx, p, off, fua)
}

// TestKernelTimeoutReconnect: with a request timeout set, a server that is
// alive but slower than the timeout gets its only socket shut down by the
// kernel. The manager notices the lost connection and hands the kernel a
// fresh socketpair (NBD_CMD_RECONFIGURE); the kernel resends the request on
// it and the writer sees no error.
func TestKernelTimeoutReconnect(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 3*time.Minute)
	be := &stallBackend{Backend: memory.New(64 << 20), release: make(chan struct{})}
	events := make(chan attach.Event, 16)
	m, err := attach.New(ctx, attach.Config{
		StateDir: t.TempDir(),
		Factory:  func(context.Context, string, bool) (nbd.Backend, error) { return be, nil },
		OnEvent: func(e attach.Event) {
			t.Log("event:", e)
			select {
			case events <- e:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rec, err := m.Attach(ctx, attach.Spec{ID: "vol-timeout", Image: "stall", Timeout: 2 * time.Second, DeadConnTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	clearDmesg(t)
	data := make([]byte, 64<<10)
	rand.Read(data)
	os.WriteFile("/tmp/tdata", data, 0o600)

	be.stalled.Store(true)
	dd := exec.Command("dd", "if=/tmp/tdata", "of="+rec.Device(), "bs=64k", "count=1", "oflag=direct", "conv=fsync")
	if err := dd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait for the kernel to give up on the request.
	for !strings.Contains(sh(t, "dmesg"), "Connection timed out") {
		if ctx.Err() != nil {
			t.Fatal("the kernel never timed the request out")
		}
		time.Sleep(100 * time.Millisecond)
	}
	be.stalled.Store(false)
	be.mu.Lock()
	close(be.release)
	be.mu.Unlock()
	if err := waitCmd(t, ctx, dd); err != nil {
		t.Fatalf("write failed across the kernel timeout: %v\n%s", err, dmesgTail(20))
	}
	reconnected := false
	for !reconnected {
		select {
		case e := <-events:
			reconnected = e.Msg == "reconnected"
		case <-ctx.Done():
			t.Fatal("no reconnect event")
		}
	}
	got := make([]byte, len(data))
	if err := be.Backend.ReadAt(ctx, got, 0); err != nil || string(got) != string(data) {
		t.Errorf("backend does not hold the write: %v", err)
	}
	// The device still works on the new socket.
	if out := sh(t, "dd if="+rec.Device()+" bs=64k count=1 iflag=direct 2>/dev/null | sha256sum"); !strings.HasPrefix(out, fileSum(t, "/tmp/tdata")) {
		t.Errorf("read back through the kernel differs")
	}
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}
	if err := m.Detach(ctx, rec.Device()); err != nil {
		t.Fatal(err)
	}
}
