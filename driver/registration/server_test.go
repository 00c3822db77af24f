package registration

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

const (
	testDriver   = "rbd.csi-gorbd.io"
	testEndpoint = "/var/lib/kubelet/plugins/rbd.csi-gorbd.io/csi.sock"
)

// statusLog collects what OnStatus reports.
type statusLog struct {
	mu  sync.Mutex
	all []Status
}

func (l *statusLog) add(s Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, s)
}

func (l *statusLog) states() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []State
	for _, s := range l.all {
		out = append(out, s.State)
	}
	return out
}

func start(t *testing.T, dir string, log *statusLog) *Server {
	t.Helper()
	o := Options{DriverName: testDriver, Endpoint: testEndpoint, Dir: dir, CheckInterval: time.Hour}
	if log != nil {
		o.OnStatus = log.add
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// kubelet dials the socket the way the kubelet's plugin manager does and
// returns a client of the same API.
func kubelet(t *testing.T, path string) registerapi.RegistrationClient {
	t.Helper()
	cc, err := grpc.NewClient("unix:"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return registerapi.NewRegistrationClient(cc)
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetInfoAndStatus(t *testing.T) {
	dir := t.TempDir()
	var log statusLog
	s := start(t, dir, &log)
	if want := filepath.Join(dir, testDriver+"-reg.sock"); s.Path() != want {
		t.Fatalf("socket %s, want %s", s.Path(), want)
	}
	if st := s.Status(); st.State != Waiting || s.Ready(context.Background()) {
		t.Fatalf("fresh server: %v ready=%v", st, s.Ready(context.Background()))
	}
	c := kubelet(t, s.Path())
	ctx := rpcCtx(t)
	info, err := c.GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetType() != registerapi.CSIPlugin || info.GetName() != testDriver || info.GetEndpoint() != testEndpoint ||
		!slices.Equal(info.GetSupportedVersions(), []string{"1.0.0"}) {
		t.Fatalf("GetInfo: %v", info)
	}

	// The kubelet reports a failure (NodeGetInfo failed, say).
	const why = "RegisterPlugin error -- plugin registration failed with err: rpc error: code = Unavailable"
	if _, err := c.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{Error: why}); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != Failed || st.Err != why || s.Ready(ctx) {
		t.Fatalf("after a failed registration: %v", st)
	}
	// The same failure again (the kubelet retries) is not a new status.
	if _, err := c.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{Error: why}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != Registered || st.Err != "" || !s.Ready(ctx) {
		t.Fatalf("after registration: %v", st)
	}
	if got, want := log.states(), []State{Waiting, Failed, Registered}; !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}

	// A restarted kubelet dials the same socket again and registers anew.
	c2 := kubelet(t, s.Path())
	if _, err := c2.GetInfo(ctx, &registerapi.InfoRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c2.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != Registered {
		t.Fatalf("after re-registration: %v", st)
	}
}

func TestFailedWithoutReason(t *testing.T) {
	s := start(t, t.TempDir(), nil)
	c := kubelet(t, s.Path())
	if _, err := c.NotifyRegistrationStatus(rpcCtx(t), &registerapi.RegistrationStatus{}); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != Failed || st.Err == "" {
		t.Fatalf("status %v, want failed with a message", st)
	}
}

// staleSocket leaves a socket file at path that nobody listens on, as a
// killed plugin does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	_ = ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("stale socket not in place: %v %v", fi, err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, testDriver+"-reg.sock")
	staleSocket(t, path)
	s := start(t, dir, nil)
	if _, err := kubelet(t, path).GetInfo(rpcCtx(t), &registerapi.InfoRequest{}); err != nil {
		t.Fatalf("GetInfo on the new socket: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNotASocketIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, testDriver+"-reg.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Options{DriverName: testDriver, Endpoint: testEndpoint, Dir: dir})
	if err == nil {
		t.Fatal("Start succeeded over a regular file")
	}
	if b, rerr := os.ReadFile(path); rerr != nil || string(b) != "precious" {
		t.Fatalf("the file was touched: %q %v", b, rerr)
	}
}

func TestBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{Endpoint: testEndpoint, Dir: dir},
		{DriverName: testDriver, Endpoint: "csi.sock", Dir: dir},
		{DriverName: testDriver, Endpoint: "unix:///csi/csi.sock", Dir: dir},
		{DriverName: testDriver, Endpoint: testEndpoint, Dir: filepath.Join(dir, "missing")},
	} {
		if s, err := Start(o); err == nil {
			_ = s.Close()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

// TestRemovedSocketIsRecreated: a socket removed under the plugin (a wiped
// kubelet directory) comes back, and the kubelet can register again.
func TestRemovedSocketIsRecreated(t *testing.T) {
	dir := t.TempDir()
	var log statusLog
	s := start(t, dir, &log)
	c := kubelet(t, s.Path())
	ctx := rpcCtx(t)
	if _, err := c.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	s.check()
	if st := s.Status(); st.State != Waiting || st.Err != "" {
		t.Fatalf("after re-creating: %v", st)
	}
	c2 := kubelet(t, s.Path())
	if _, err := c2.GetInfo(ctx, &registerapi.InfoRequest{}); err != nil {
		t.Fatalf("GetInfo on the re-created socket: %v", err)
	}
	if _, err := c2.NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := log.states(), []State{Waiting, Registered, Waiting, Registered}; !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v", got, want)
	}
}

// TestWatchRecreates runs the watch itself (a short interval) rather than
// calling check.
func TestWatchRecreates(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Options{DriverName: testDriver, Endpoint: testEndpoint, Dir: dir, CheckInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Lstat(s.Path()); err == nil && fi.Mode().Type() == fs.ModeSocket {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("socket not re-created within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := kubelet(t, s.Path()).GetInfo(rpcCtx(t), &registerapi.InfoRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestReplacedByAnotherProcess: a newer plugin's socket at the path is
// left alone, by the watch and by Close.
func TestReplacedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, nil)
	if err := os.Remove(s.Path()); err != nil {
		t.Fatal(err)
	}
	other, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.Path(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s.check()
	if st := s.Status(); st.State != Replaced {
		t.Fatalf("status %v, want replaced", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(s.Path()); err != nil || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("the other process's socket is gone: %v", err)
	}
}
