package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

// nbdServeOpenImage opens the backend for `nbd serve POOL/IMAGE`. It is nil
// until the RBD backend registers itself (from its own file's init); the
// returned close function is called after the server stopped.
var nbdServeOpenImage func(ctx context.Context, cmd *cobra.Command, image string) (b nbd.Backend, desc string, close func() error, err error)

var nbdServeFlags struct {
	memory      string
	listen      string
	name        string
	description string
	readOnly    bool
	workers     int
	maxInFlight string
	cpuProfile  string
}

var nbdServeCmd = &cobra.Command{
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
	RunE: runNBDServe,
}

func init() {
	f := nbdServeCmd.Flags()
	f.StringVar(&nbdServeFlags.memory, "memory", "", "serve a sparse in-memory device of this `SIZE` (e.g. 1G, 512MiB, 1048576)")
	f.StringVar(&nbdServeFlags.listen, "listen", "", "listen on `unix:PATH` or `tcp:HOST:PORT` (required)")
	f.StringVar(&nbdServeFlags.name, "name", "", "export name (also served as the default export)")
	f.StringVar(&nbdServeFlags.description, "description", "", "export description")
	f.BoolVar(&nbdServeFlags.readOnly, "read-only", false, "refuse writes")
	f.IntVar(&nbdServeFlags.workers, "workers", 0, "concurrent requests per connection (default 16)")
	f.StringVar(&nbdServeFlags.maxInFlight, "max-inflight", "", "payload bytes in flight per connection (`SIZE`, default 64MiB)")
	f.StringVar(&nbdServeFlags.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the serving to `FILE`")
	f.MarkHidden("cpuprofile")
	nbdServeCmd.MarkFlagRequired("listen")
	nbdCmd.AddCommand(nbdServeCmd)
}

func runNBDServe(cmd *cobra.Command, args []string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fl := &nbdServeFlags

	srv := &nbd.Server{DefaultExport: fl.name}
	srv.Options.Workers = fl.workers
	if fl.maxInFlight != "" {
		n, err := parseSize(fl.maxInFlight)
		if err != nil {
			return fmt.Errorf("--max-inflight: %w", err)
		}
		srv.Options.MaxInFlight = n
	}
	add := func(name, desc string, b nbd.Backend, ro bool) error {
		return srv.AddExport(&nbd.Export{Name: name, Description: desc, Backend: b, ReadOnly: ro})
	}
	var size int64
	switch {
	case fl.memory != "" && len(args) > 0:
		return errors.New("give either --memory or an image, not both")
	case fl.memory != "":
		n, err := parseSize(fl.memory)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		desc := fl.description
		if desc == "" {
			desc = "in-memory device"
		}
		b := memory.New(n)
		if err := add(fl.name, desc, b, fl.readOnly); err != nil {
			return err
		}
		size = b.Size()
	case len(args) > 0 && nbdServeOpenImage == nil:
		return errors.New("serving RBD images is not built in yet; use --memory")
	case len(args) > 1 && fl.name != "":
		return errors.New("--name names a single export; with several images each export is named by its spec")
	case len(args) > 0:
		for _, spec := range args {
			b, d, c, err := nbdServeOpenImage(ctx, cmd, spec)
			if err != nil {
				return err
			}
			defer c()
			ro := fl.readOnly
			if r, ok := b.(interface{ ReadOnly() bool }); ok && r.ReadOnly() {
				ro = true // a snapshot
			}
			name, desc := spec, d
			if len(args) == 1 {
				// One image: named --name if given, else by its spec,
				// and the default export either way.
				if fl.name != "" {
					name = fl.name
				}
				srv.DefaultExport = name
				if fl.description != "" {
					desc = fl.description
				}
			}
			if err := add(name, desc, b, ro); err != nil {
				return err
			}
			size += b.Size()
		}
	default:
		return errors.New("nothing to serve: give --memory SIZE or an image")
	}

	l, err := listenNBD(fl.listen)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		fmt.Fprintf(cmd.ErrOrStderr(), "serving %d exports (%d bytes) on %s\n", len(args), size, fl.listen)
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "serving export %q (%d bytes) on %s\n", fl.name, size, fl.listen)
	}
	if fl.cpuProfile != "" {
		pf, err := os.Create(fl.cpuProfile)
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

// listenNBD parses unix:PATH or tcp:ADDR. A stale unix socket file is
// replaced.
func listenNBD(spec string) (net.Listener, error) {
	network, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("--listen %q: want unix:PATH or tcp:HOST:PORT", spec)
	}
	switch network {
	case "unix":
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(addr)
		}
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("--listen %q: unknown network %q", spec, network)
	}
	return net.Listen(network, addr)
}

// parseSize parses a byte count with an optional binary suffix: K, M, G,
// T (and KiB, MiB, ..., or KB-style spellings, all powers of 1024).
func parseSize(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTPkmgtpiBb")
	suffix := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s[len(num):], "B"), "i"))
	shift := 0
	switch suffix {
	case "":
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	case "P":
		shift = 50
	default:
		return 0, fmt.Errorf("bad size %q", s)
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
