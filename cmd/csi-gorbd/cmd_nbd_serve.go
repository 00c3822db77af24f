package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// nbdServeOpts are the options of one `nbd serve`.
type nbdServeOpts struct {
	memory      string
	listen      string
	name        string
	description string
	readOnly    bool
	workers     int
	maxInFlight string
	cpuProfile  string
	allowRemote bool
	maxConns    int
	exportBytes string
	qos         bool
	qosLimits   []string
	metricsAddr string
	metrics     *driver.Metrics // with --metrics-address
}

func (n *nbdCLI) serveCmd() *cobra.Command {
	var o nbdServeOpts
	c := &cobra.Command{
		Use:   "serve [POOL/IMAGE[@SNAP]...]",
		Short: "Serve a block device over NBD until interrupted",
		Long: `Serve a block device over NBD (fixed newstyle, structured replies,
multi-conn) on a unix socket or TCP address until SIGINT/SIGTERM.

  csi-gorbd nbd serve --memory 1G --listen unix:/tmp/nbd.sock --name disk
  nbdinfo 'nbd+unix:///disk?socket=/tmp/nbd.sock'

The export named by --name is also the default export (empty name).
Several images can be served at once, from one process and one cluster
connection: each is an export named by its spec.

  csi-gorbd nbd serve rbd/a rbd/b --listen unix:/tmp/nbd.sock
  nbdinfo 'nbd+unix:///rbd/b?socket=/tmp/nbd.sock'`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return n.runServe(cmd, args, &o) },
	}
	f := c.Flags()
	f.StringVar(&o.memory, "memory", "", "serve a sparse in-memory device of this `SIZE` (e.g. 1G, 512MiB, 1048576)")
	f.StringVar(&o.listen, "listen", "", "listen on `unix:PATH` or `tcp:HOST:PORT` (required)")
	f.StringVar(&o.name, "name", "", "export name (also served as the default export)")
	f.StringVar(&o.description, "description", "", "export description")
	f.BoolVar(&o.readOnly, "read-only", false, "refuse writes")
	f.IntVar(&o.workers, "workers", 0, "concurrent requests per connection (default 16)")
	f.StringVar(&o.maxInFlight, "max-inflight", "", "payload bytes in flight per connection (`SIZE`, default 64MiB)")
	f.StringVar(&o.exportBytes, "max-export-inflight", "256MiB", "payload bytes in flight per export, all its connections together (`SIZE`; 0: no bound)")
	f.IntVar(&o.maxConns, "max-connections", 16, "connections per export at once (0: no limit)")
	f.BoolVar(&o.qos, "qos", true, "honour the images' librbd QoS settings (rbd_qos_* set by rbd config image|pool set), following image changes live")
	f.StringArrayVar(&o.qosLimits, "qos-limit", nil, "limit the --memory device with a librbd QoS option, `OPTION=VALUE` (e.g. rbd_qos_iops_limit=200; repeatable)")
	f.StringVar(&o.metricsAddr, "metrics-address", "", "serve Prometheus /metrics on `HOST:PORT`: every export's requests, bytes, errors, latency and QoS waits, labelled volume_id=<export name>")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "let --listen tcp: take a non-loopback address: NBD has no authentication or encryption, so anyone who reaches it can read and write the exports")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the serving to `FILE`")
	f.MarkHidden("cpuprofile")
	c.MarkFlagRequired("listen")
	addEncryptionFlags(c)
	return c
}

func (n *nbdCLI) runServe(cmd *cobra.Command, args []string, o *nbdServeOpts) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := o.server()
	if err != nil {
		return err
	}
	shared := &sharedConn{ceph: n.ceph}
	size, err := addServeExports(ctx, cmd, srv, args, o, shared)
	defer shared.closeAll()
	if err != nil {
		return err
	}
	if err := o.serveMetrics(ctx, cmd); err != nil {
		return err
	}
	l, err := listenNBD(ctx, o.listen, o.allowRemote)
	if err != nil {
		return err
	}
	defer l.Close()
	if len(args) > 1 {
		fmt.Fprintf(cmd.ErrOrStderr(), "serving %d exports (%d bytes) on %s\n", len(args), size, o.listen)
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "serving export %q (%d bytes) on %s\n", o.name, size, o.listen)
	}
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return srv.Serve(ctx, l)
}

// server is the NBD server the options describe, with no exports yet.
func (o *nbdServeOpts) server() (*nbd.Server, error) {
	srv := &nbd.Server{DefaultExport: o.name, MaxConnsPerExport: o.maxConns}
	srv.Options.Workers = o.workers
	if o.maxInFlight != "" {
		n, err := parseSize(o.maxInFlight)
		if err != nil {
			return nil, fmt.Errorf("--max-inflight: %w", err)
		}
		srv.Options.MaxInFlight = n
	}
	n, err := parseSize(o.exportBytes)
	if err != nil {
		return nil, fmt.Errorf("--max-export-inflight: %w", err)
	}
	srv.MaxInFlightPerExport = n
	if o.maxConns < 0 {
		return nil, errors.New("--max-connections must be ≥ 0")
	}
	return srv, nil
}

// addServeExports adds the --memory device or the images to srv and
// returns their total size. Images opened are closed by shared.closeAll.
func addServeExports(ctx context.Context, cmd *cobra.Command, srv *nbd.Server, args []string, o *nbdServeOpts, shared *sharedConn) (int64, error) {
	if o.metricsAddr != "" {
		o.metrics = driver.NewMetrics()
	}
	add := func(name, desc string, b nbd.Backend, ro bool, lim *qos.Limiter) error {
		e := &nbd.Export{Name: name, Description: desc, Backend: b, ReadOnly: ro, Limiter: lim}
		if o.metrics != nil {
			e.Observer, _ = o.metrics.Volume(name, "")
		}
		return srv.AddExport(e)
	}
	switch {
	case o.memory != "" && len(args) > 0:
		return 0, errors.New("give either --memory or an image, not both")
	case len(o.qosLimits) > 0 && o.memory == "":
		return 0, errors.New("--qos-limit limits the --memory device; an image's limits are its own (rbd config image set)")
	case o.memory != "":
		n, err := parseSize(o.memory)
		if err != nil {
			return 0, fmt.Errorf("--memory: %w", err)
		}
		desc := o.description
		if desc == "" {
			desc = "in-memory device"
		}
		lim, err := memoryLimiter(o.qosLimits)
		if err != nil {
			return 0, err
		}
		b := memory.New(n)
		return b.Size(), add(o.name, desc, b, o.readOnly, lim)
	case len(args) > 1 && o.name != "":
		return 0, errors.New("--name names a single export; with several images each export is named by its spec")
	case len(args) == 0:
		return 0, errors.New("nothing to serve: give --memory SIZE or an image")
	}
	var size int64
	for _, spec := range args {
		b, err := shared.open(ctx, cmd, spec, o.readOnly, o.qos)
		if err != nil {
			return 0, err
		}
		ro := o.readOnly || b.ReadOnly() // a snapshot is read-only
		name, desc := spec, b.Description()
		if len(args) == 1 {
			// One image: named --name if given, else by its spec,
			// and the default export either way.
			if o.name != "" {
				name = o.name
			}
			srv.DefaultExport = name
			if o.description != "" {
				desc = o.description
			}
		}
		if err := add(name, desc, b, ro, b.Limiter()); err != nil {
			return 0, err
		}
		size += b.Size()
	}
	return size, nil
}

// serveMetrics serves the exports' series on --metrics-address (the node
// plugin's per-volume metrics, with the export name as volume_id).
func (o *nbdServeOpts) serveMetrics(ctx context.Context, cmd *cobra.Command) error {
	if o.metrics == nil {
		return nil
	}
	a, err := driver.ServeMetrics(ctx, o.metricsAddr, o.metrics, driver.HealthOptions{})
	if err != nil {
		return fmt.Errorf("--metrics-address: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "metrics on http://%s/metrics\n", a)
	return nil
}

// memoryLimiter makes the --memory device's limiter from --qos-limit
// OPTION=VALUE pairs (librbd's QoS options); nil without any.
func memoryLimiter(pairs []string) (*qos.Limiter, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !rbd.IsQoSOption(k) {
			return nil, fmt.Errorf("--qos-limit %q: want OPTION=VALUE with one of %s", p, strings.Join(rbd.QoSOptions(), ", "))
		}
		if _, err := rbd.ParseQoSValue(k, v); err != nil {
			return nil, fmt.Errorf("--qos-limit: %w", err)
		}
		m[k] = v
	}
	q, err := rbd.QoSFrom(m)
	if err != nil {
		return nil, fmt.Errorf("--qos-limit: %w", err)
	}
	return qos.New(rbdbackend.Limits(q)), nil
}

// parseSize parses a byte count with an optional binary suffix: K, M, G,
// T (and KiB, MiB, ..., or KB-style spellings, all powers of 1024).
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTPkmgtpiBb")
	suffix := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i"))
	var shift uint
	if suffix != "" {
		var ok bool
		if shift, ok = binaryShift(suffix); !ok {
			return 0, fmt.Errorf("bad size %q", s)
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n << shift, nil
}
