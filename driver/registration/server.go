package registration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/csi-gorbd/csi-gorbd/internal/unixsock"
)

// DefaultCheckInterval is how often the socket's presence is checked.
const DefaultCheckInterval = 10 * time.Second

// Options configure a registration Server.
type Options struct {
	// DriverName is the CSI driver's name (GetPluginInfo's name).
	DriverName string
	// Endpoint is the CSI endpoint's socket path as the kubelet sees it
	// (for example /var/lib/kubelet/plugins/<driver>/csi.sock), not as
	// this process sees it.
	Endpoint string
	// Dir is the kubelet's plugins_registry directory as this process
	// sees it. The kubelet creates it; it must exist.
	Dir string
	// SocketName is the socket's file name in Dir; empty means
	// "<DriverName>-reg.sock", node-driver-registrar's name.
	SocketName string
	// Versions are the CSI versions offered to the kubelet; empty means
	// ["1.0.0"].
	Versions []string
	// CheckInterval is how often the socket's presence is checked; zero
	// means DefaultCheckInterval.
	CheckInterval time.Duration
	// OnStatus, if set, is called with every change of Status, from the
	// goroutine that made it (a gRPC handler or the watch); it must not
	// block and must not call Close.
	OnStatus func(Status)
}

// Server serves the Registration service on the registration socket.
//
// Locking: mu guards ln, fi and status. OnStatus runs after mu is
// released. The watch goroutine and one serve goroutine per listener are
// owned by the Server and waited for by Close.
type Server struct {
	opts Options
	path string
	srv  *grpc.Server

	mu     sync.Mutex
	ln     *net.UnixListener // nil while another process owns the path
	fi     fs.FileInfo       // our socket file, to recognise it later
	status Status

	stop     context.CancelFunc
	watching chan struct{}  // closed when the watch goroutine returns
	wg       sync.WaitGroup // the serve goroutines
	closed   sync.Once
}

// Start checks opts, removes a stale socket, listens on Dir/SocketName and
// serves the Registration service until Close. It returns once the socket
// is listening: the kubelet may register the plugin from then on, so the
// CSI endpoint should be listening before Start is called.
func Start(opts Options) (*Server, error) {
	if opts.DriverName == "" {
		return nil, errors.New("registration: no driver name")
	}
	if !filepath.IsAbs(opts.Endpoint) {
		return nil, fmt.Errorf("registration: CSI endpoint path %q as the kubelet sees it must be an absolute path", opts.Endpoint)
	}
	if opts.SocketName == "" {
		opts.SocketName = opts.DriverName + "-reg.sock"
	}
	if len(opts.Versions) == 0 {
		opts.Versions = []string{"1.0.0"}
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	if fi, err := os.Stat(opts.Dir); err != nil {
		return nil, fmt.Errorf("registration: kubelet plugin registration directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("registration: kubelet plugin registration directory %s is not a directory", opts.Dir)
	}
	s := &Server{opts: opts, path: filepath.Join(opts.Dir, opts.SocketName), srv: grpc.NewServer()}
	registerapi.RegisterRegistrationServer(s.srv, &service{s: s})
	if err := unixsock.RemoveStale(s.path); err != nil { // a socket left by an earlier process; nothing else
		return nil, err
	}
	ln, fi, err := listen(s.path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.ln, s.fi = ln, fi
	s.setLocked(Waiting, "")
	st := s.status
	s.serveLocked(ln)
	s.mu.Unlock()
	s.report(st)

	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.watching = cancel, make(chan struct{})
	go s.watch(ctx)
	return s, nil
}

// Path is the registration socket's path.
func (s *Server) Path() string { return s.path }

// Status is the registration's current status.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Ready reports whether the kubelet has registered the plugin (for a
// readiness check: a node plugin the kubelet does not know serves nobody).
func (s *Server) Ready(context.Context) bool { return s.Status().State == Registered }

// Close stops serving, waits for the goroutines and removes the socket if
// it is still this process's, so the kubelet unregisters the plugin.
func (s *Server) Close() error {
	var err error
	s.closed.Do(func() {
		s.stop()
		<-s.watching // no listener is created after this
		s.srv.Stop() // closes the listeners; the serve goroutines return
		s.wg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ln != nil && s.ours() {
			if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = fmt.Errorf("registration: removing socket: %w", rerr)
			}
		}
		s.ln = nil
	})
	return err
}

// listen creates the socket at path and returns it with its file's info.
func listen(path string) (*net.UnixListener, fs.FileInfo, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, fmt.Errorf("registration: %w", err)
	}
	// Never unlink on Close: by then the path may hold another process's
	// socket. Removal is explicit (Close, when the file is still ours).
	ln.SetUnlinkOnClose(false)
	fi, err := os.Lstat(path)
	if err != nil {
		_ = ln.Close()
		return nil, nil, fmt.Errorf("registration: %w", err)
	}
	return ln, fi, nil
}

// serveLocked serves ln in an owned goroutine. Caller holds mu.
func (s *Server) serveLocked(ln *net.UnixListener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Serve returns when ln is closed (replaced socket) or the
		// server stops (Close); neither is an error worth reporting.
		_ = s.srv.Serve(ln)
	}()
}

// ours reports whether the file at the path is the socket this process
// created. Caller holds mu.
func (s *Server) ours() bool {
	fi, err := os.Lstat(s.path)
	return err == nil && s.fi != nil && os.SameFile(fi, s.fi)
}

// watch checks the socket every CheckInterval until ctx ends.
func (s *Server) watch(ctx context.Context) {
	defer close(s.watching)
	t := time.NewTicker(s.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check()
		}
	}
}

// check keeps the socket in place: ours is left alone; another process's
// socket is that process's registration (this one stops listening);
// nothing at the path means it was removed under us and is re-created,
// which makes the kubelet register the plugin again.
func (s *Server) check() {
	s.mu.Lock()
	fi, err := os.Lstat(s.path)
	var changed bool
	switch {
	case err == nil && s.fi != nil && os.SameFile(fi, s.fi):
		// Ours and listening.
	case err == nil:
		if s.ln != nil {
			_ = s.ln.Close()
			s.ln, s.fi = nil, nil
			changed = s.setLocked(Replaced, "")
		}
	case errors.Is(err, fs.ErrNotExist):
		if s.ln != nil {
			_ = s.ln.Close()
			s.ln, s.fi = nil, nil
		}
		ln, nfi, lerr := listen(s.path)
		if lerr != nil {
			changed = s.setLocked(Waiting, "re-creating the socket: "+lerr.Error())
			break
		}
		s.ln, s.fi = ln, nfi
		s.serveLocked(ln)
		changed = s.setLocked(Waiting, "")
	}
	st := s.status
	s.mu.Unlock()
	if changed {
		s.report(st)
	}
}

// setLocked sets the status and tells whether it changed. Caller holds mu.
func (s *Server) setLocked(state State, errText string) bool {
	if s.status.State == state && s.status.Err == errText && !s.status.Since.IsZero() {
		return false
	}
	s.status = Status{State: state, Err: errText, Since: time.Now(), Socket: s.path}
	return true
}

func (s *Server) report(st Status) {
	if s.opts.OnStatus != nil {
		s.opts.OnStatus(st)
	}
}

// service implements the Registration gRPC service.
type service struct {
	registerapi.UnimplementedRegistrationServer
	s *Server
}

// GetInfo tells the kubelet what this plugin is and where its CSI
// endpoint is.
func (v *service) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	o := &v.s.opts
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              o.DriverName,
		Endpoint:          o.Endpoint,
		SupportedVersions: append([]string(nil), o.Versions...),
	}, nil
}

// NotifyRegistrationStatus records the kubelet's verdict.
func (v *service) NotifyRegistrationStatus(_ context.Context, in *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	s := v.s
	state, errText := Registered, ""
	if !in.GetPluginRegistered() {
		state, errText = Failed, in.GetError()
		if errText == "" {
			errText = "the kubelet did not register the plugin and gave no reason"
		}
	}
	s.mu.Lock()
	changed := s.setLocked(state, errText)
	st := s.status
	s.mu.Unlock()
	if changed {
		s.report(st)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}
