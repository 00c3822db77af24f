package csiceph

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// fakeDialer stands in for rados.Connect: every dial blocks until the
// test releases its user (or its context ends) and then fails with the
// released error. It counts dials and the most in flight per user.
type fakeDialer struct {
	started chan string // the user of every dial that starts

	mu       sync.Mutex
	release  map[string]chan error
	inFlight map[string]int
	maxIn    map[string]int
	dials    int
}

func newFakeDialer() *fakeDialer {
	return &fakeDialer{started: make(chan string, 100), release: map[string]chan error{},
		inFlight: map[string]int{}, maxIn: map[string]int{}}
}

func (f *fakeDialer) releaseOf(user string) chan error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.release[user] == nil {
		f.release[user] = make(chan error)
	}
	return f.release[user]
}

func (f *fakeDialer) dial(ctx context.Context, cfg rados.Config) (*rados.Conn, error) {
	f.mu.Lock()
	f.dials++
	f.inFlight[cfg.User]++
	f.maxIn[cfg.User] = max(f.maxIn[cfg.User], f.inFlight[cfg.User])
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[cfg.User]--
		f.mu.Unlock()
	}()
	f.started <- cfg.User
	select {
	case err := <-f.releaseOf(cfg.User):
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeDialer) count() (dials int, maxIn map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials, maps.Clone(f.maxIn)
}

func testPool(t *testing.T, f *fakeDialer) *Pool {
	t.Helper()
	p := NewPool(PoolOptions{Clusters: Clusters{
		"a": {ClusterID: "a", Monitors: []string{"127.0.0.1:1"}},
		"b": {ClusterID: "b", Monitors: []string{"127.0.0.1:2"}},
	}})
	p.dial = f.dial
	t.Cleanup(p.Close)
	return p
}

// TestPoolOneDialPerKey: concurrent callers for one key share one dial
// and its result (never two dials of a key at once); a failed dial is
// forgotten, so the next caller dials again.
func TestPoolOneDialPerKey(t *testing.T) {
	f := newFakeDialer()
	p := testPool(t, f)
	cr := Credentials{User: "u", Key: "k"}
	boom := errors.New("boom")
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := p.Get(context.Background(), "a", cr)
			errs <- err
		}()
	}
	<-f.started
	time.Sleep(20 * time.Millisecond) // let the other callers queue up on the dial
	f.releaseOf("u") <- boom
	// A caller that asked only after that failure dials anew: fail those
	// dials too.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-f.started:
				f.releaseOf("u") <- boom
			case <-stop:
				return
			}
		}
	}()
	for range n {
		if err := <-errs; !errors.Is(err, boom) {
			t.Errorf("caller got %v, want the dial's error", err)
		}
	}
	dials, maxIn := f.count()
	if maxIn["u"] != 1 {
		t.Errorf("%d dials of one key at once, want 1", maxIn["u"])
	}
	t.Logf("%d callers, %d dials", n, dials)
	if dials >= n {
		t.Errorf("%d callers made %d dials: none shared the dial in flight", n, dials)
	}
	if _, err := p.Get(context.Background(), "a", cr); !errors.Is(err, boom) {
		t.Errorf("redial: %v", err)
	}
	if d, _ := f.count(); d != dials+1 {
		t.Errorf("a failed dial was not forgotten: %d dials, want %d", d, dials+1)
	}
}

// TestPoolDeadline: a caller's deadline ends its wait, not the dial, and
// the pool's lock is not held while dialling: another key dials at the
// same time, health checks answer at once, Close ends the dial.
func TestPoolDeadline(t *testing.T) {
	f := newFakeDialer()
	p := testPool(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Get(ctx, "a", Credentials{User: "slow", Key: "k"})
	if Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Get past its deadline: %v (%v), want DeadlineExceeded", err, Code(err))
	}
	if u := <-f.started; u != "slow" {
		t.Fatalf("dial for %q", u)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := p.Get(context.Background(), "b", Credentials{User: "other", Key: "k"})
		if !errors.Is(err, rados.ErrNoMonitor) {
			t.Errorf("second key: %v", err)
		}
	}()
	if u := <-f.started; u != "other" {
		t.Fatalf("dial for %q", u)
	}
	if h := p.Health(context.Background()); len(h) != 0 {
		t.Errorf("health of a pool with no connection: %v", h)
	}
	f.releaseOf("other") <- rados.ErrNoMonitor
	wg.Wait()
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the dial in flight")
	}
	if _, err := p.Get(context.Background(), "a", Credentials{User: "slow", Key: "k"}); !errors.Is(err, rados.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if n, _ := f.count(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}
}

func TestPoolUnknownCluster(t *testing.T) {
	p := testPool(t, newFakeDialer())
	_, err := p.Get(context.Background(), "x", Credentials{User: "u", Key: "k"})
	if !errors.Is(err, ErrUnknownCluster) || Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown cluster: %v", err)
	}
	if want := `clusterID "x" is not in the clusters file (known: a, b)`; !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
}

// TestPoolClusterOptions: a cluster's cephOptions (ms_mode,
// client_mount_timeout) reach the dial.
func TestPoolClusterOptions(t *testing.T) {
	cs, err := ParseClusters([]byte(`[{"clusterID":"c","monitors":["127.0.0.1:1"],"cephOptions":{"ms_mode":"secure","client_mount_timeout":"7"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(PoolOptions{Clusters: cs})
	defer p.Close()
	var got rados.Config
	p.dial = func(_ context.Context, cfg rados.Config) (*rados.Conn, error) {
		got = cfg
		return nil, errors.New("no cluster here")
	}
	if _, err := p.Get(context.Background(), "c", Credentials{User: "u", Key: "k"}); err == nil {
		t.Fatal("dial error lost")
	}
	if got.MsMode != "secure" || got.ConnectTimeout != 7*time.Second {
		t.Errorf("dialled with %+v", got)
	}
}
