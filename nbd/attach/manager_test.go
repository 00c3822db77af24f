//go:build linux

package attach

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// fakeKernel owns every recorded device and keeps what Reconfigure and
// SetCheckInterval were given.
type fakeKernel struct {
	mu       sync.Mutex
	socks    map[int][]*os.File
	interval map[int]time.Duration
}

func (k *fakeKernel) Connect(context.Context, []*os.File, ConnectParams) (int, error) {
	return 0, errors.New("fake: no connect")
}

func (k *fakeKernel) Reconfigure(_ context.Context, index int, socks []*os.File, _ ReconfigureParams) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, f := range socks { // the manager closes its copies
		g, err := dupFile(f)
		if err != nil {
			return err
		}
		k.socks[index] = append(k.socks[index], g)
	}
	return nil
}

func (k *fakeKernel) Disconnect(context.Context, int) error           { return nil }
func (k *fakeKernel) Owns(context.Context, int, string) (bool, error) { return true, nil }

func (k *fakeKernel) SetCheckInterval(index int, d time.Duration) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.interval[index] = d
	return nil
}

func dupFile(f *os.File) (*os.File, error) {
	sc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var g *os.File
	var derr error
	err = sc.Control(func(fd uintptr) {
		var nfd int
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		if derr == nil {
			g = os.NewFile(uintptr(nfd), f.Name())
		}
	})
	if err != nil {
		return nil, err
	}
	return g, derr
}

// TestRecoverParallel: a restarted process takes its devices over all at
// once (each mostly waits on its cluster), so n devices cost about one
// device's open, not n. Every open waits at a barrier that only all n
// together pass; serial recovery would fail it. Devices with one
// connection and no request timeout get the short check interval (see
// DefaultCheckInterval); one with a timeout keeps the kernel's.
func TestRecoverParallel(t *testing.T) {
	const n = 4
	dir := t.TempDir()
	st := Store{Dir: dir}
	for i := range n {
		r := &Record{Index: i, ID: fmt.Sprintf("vol-%d", i), Image: fmt.Sprintf("img-%d", i), Size: 1 << 20,
			BlockSize: DefaultBlockSize, Connections: 1, DeadConnTimeoutSeconds: 120}
		if i == n-1 {
			r.TimeoutSeconds = 30
		}
		if err := st.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	factory := func(ctx context.Context, image string, _ bool) (nbd.Backend, error) {
		arrived.Done()
		select {
		case <-all:
			return memory.New(1 << 20), nil
		case <-time.After(30 * time.Second):
			return nil, fmt.Errorf("open %s: the other devices' opens did not run alongside", image)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	k := &fakeKernel{socks: map[int][]*os.File{}, interval: map[int]time.Duration{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := New(ctx, Config{StateDir: dir, Factory: factory, Kernel: k})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		m.Close()
		for _, fs := range k.socks {
			closeFiles(fs)
		}
	}()
	recs, err := m.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	if len(recs) != n || len(m.Served()) != n {
		t.Fatalf("recovered %d, serving %d devices, want %d", len(recs), len(m.Served()), n)
	}
	for i := range n {
		if len(k.socks[i]) != 1 {
			t.Errorf("nbd%d reconfigured with %d sockets, want 1", i, len(k.socks[i]))
		}
		want := DefaultCheckInterval
		if i == n-1 {
			want = 0 // has a request timeout: left alone
		}
		if got := k.interval[i]; got != want {
			t.Errorf("nbd%d check interval %v, want %v", i, got, want)
		}
	}
}
