package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"

	"github.com/csi-gorbd/csi-gorbd/internal/unixsock"
)

// Modes of the plugin.
const (
	ModeController = "controller"
	ModeNode       = "node"
	ModeAll        = "all"
)

// Options configure a Driver.
type Options struct {
	Name    string // CSI driver name, e.g. rbd.csi-gorbd.io
	Version string
	NodeID  string
	Mode    string // controller, node or all

	Controller csi.ControllerServer // required for controller and all
	Node       csi.NodeServer       // required for node and all
	// Ready backs Probe; nil means always ready.
	Ready func(context.Context) bool
	// Metrics, when set, counts and times every call (see NewMetrics).
	Metrics *Metrics
	// Topology advertises VOLUME_ACCESSIBILITY_CONSTRAINTS: the node
	// plugins report topology segments and the controller honours
	// accessibility requirements.
	Topology bool
}

// Driver is the gRPC server of the plugin.
type Driver struct {
	opts Options
	srv  *grpc.Server

	mu sync.Mutex
	ln net.Listener
}

// New validates the options and builds the server.
func New(o Options) (*Driver, error) {
	if o.Name == "" {
		return nil, errors.New("driver: name is required")
	}
	switch o.Mode {
	case ModeController, ModeAll:
		if o.Controller == nil {
			return nil, fmt.Errorf("driver: mode %s needs a controller service", o.Mode)
		}
	case ModeNode:
	default:
		return nil, fmt.Errorf("driver: unknown mode %q (controller, node or all)", o.Mode)
	}
	if o.Mode != ModeController {
		if o.NodeID == "" {
			return nil, fmt.Errorf("driver: mode %s needs a node id", o.Mode)
		}
		if o.Node == nil {
			return nil, fmt.Errorf("driver: mode %s needs a node service", o.Mode)
		}
	}
	if o.Mode == ModeController {
		o.Node = nil
	}
	if o.Mode == ModeNode {
		o.Controller = nil
	}
	d := &Driver{opts: o}
	interceptors := []grpc.UnaryServerInterceptor{logCalls}
	if o.Metrics != nil {
		interceptors = append([]grpc.UnaryServerInterceptor{o.Metrics.UnaryInterceptor}, interceptors...)
	}
	d.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(interceptors...))
	csi.RegisterIdentityServer(d.srv, &identity{o: &d.opts})
	if o.Controller != nil {
		csi.RegisterControllerServer(d.srv, o.Controller)
		if g, ok := o.Controller.(csi.GroupControllerServer); ok {
			csi.RegisterGroupControllerServer(d.srv, g)
		}
	}
	if o.Node != nil {
		csi.RegisterNodeServer(d.srv, o.Node)
	}
	return d, nil
}

// Listen opens the endpoint: unix:///path (a socket left there by an
// earlier run is removed first; any other file at the path is an error
// and stays) or tcp://host:port.
func Listen(endpoint string) (net.Listener, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("driver: endpoint %q: %w", endpoint, err)
	}
	switch u.Scheme {
	case "unix":
		path := u.Path
		if u.Host != "" { // unix://relative/path
			path = filepath.Join(u.Host, u.Path)
		}
		if path == "" {
			return nil, fmt.Errorf("driver: endpoint %q has no path", endpoint)
		}
		if err := unixsock.RemoveStale(path); err != nil {
			return nil, fmt.Errorf("driver: endpoint %q: %w", endpoint, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, err
		}
		return net.Listen("unix", path)
	case "tcp":
		return net.Listen("tcp", u.Host)
	}
	return nil, fmt.Errorf("driver: endpoint %q: scheme must be unix or tcp", endpoint)
}

// Serve serves on ln until Stop or ctx ends.
func (d *Driver) Serve(ctx context.Context, ln net.Listener) error {
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, d.Stop)
	defer stop()
	err := d.srv.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// ErrTCPNode: a node plugin (modes node and all) serves only on a unix
// socket. Its RPCs mount and format devices as root, and the kubelet
// reaches it through a socket on the host anyway.
var ErrTCPNode = errors.New("driver: the node service listens only on a unix socket")

// Run listens on the endpoint and serves until ctx ends. A tcp endpoint
// is refused in modes node and all (ErrTCPNode).
func (d *Driver) Run(ctx context.Context, endpoint string) error {
	if d.opts.Mode != ModeController && strings.HasPrefix(endpoint, "tcp:") {
		return fmt.Errorf("%w: %q", ErrTCPNode, endpoint)
	}
	ln, err := Listen(endpoint)
	if err != nil {
		return err
	}
	return d.Serve(ctx, ln)
}

// Stop ends the server, letting calls in flight finish.
func (d *Driver) Stop() { d.srv.GracefulStop() }
