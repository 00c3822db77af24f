package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
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
}

var nbdServeCmd = &cobra.Command{
	Use:   "serve [POOL/IMAGE]",
	Short: "Serve a block device over NBD until interrupted",
	Long: `Serve a block device over NBD (fixed newstyle, structured replies,
multi-conn) on a unix socket or TCP address until SIGINT/SIGTERM.

  csi-gorbd nbd serve --memory 1G --listen unix:/tmp/nbd.sock --name disk
  nbdinfo 'nbd+unix:///disk?socket=/tmp/nbd.sock'

The export named by --name is also the default export (empty name).`,
	Args: cobra.MaximumNArgs(1),
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
	nbdServeCmd.MarkFlagRequired("listen")
	nbdCmd.AddCommand(nbdServeCmd)
}

func runNBDServe(cmd *cobra.Command, args []string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fl := &nbdServeFlags

	var (
		backend nbd.Backend
		desc    = fl.description
		closeFn = func() error { return nil }
	)
	switch {
	case fl.memory != "" && len(args) > 0:
		return errors.New("give either --memory or an image, not both")
	case fl.memory != "":
		size, err := parseSize(fl.memory)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		backend = memory.New(size)
		if desc == "" {
			desc = "in-memory device"
		}
	case len(args) == 1 && nbdServeOpenImage != nil:
		b, d, c, err := nbdServeOpenImage(ctx, cmd, args[0])
		if err != nil {
			return err
		}
		backend, closeFn = b, c
		if desc == "" {
			desc = d
		}
	case len(args) == 1:
		return errors.New("serving RBD images is not built in yet; use --memory")
	default:
		return errors.New("nothing to serve: give --memory SIZE or an image")
	}
	defer closeFn()

	srv := &nbd.Server{DefaultExport: fl.name}
	srv.Options.Workers = fl.workers
	if fl.maxInFlight != "" {
		n, err := parseSize(fl.maxInFlight)
		if err != nil {
			return fmt.Errorf("--max-inflight: %w", err)
		}
		srv.Options.MaxInFlight = n
	}
	if err := srv.AddExport(&nbd.Export{
		Name:        fl.name,
		Description: desc,
		Backend:     backend,
		ReadOnly:    fl.readOnly,
	}); err != nil {
		return err
	}

	l, err := listenNBD(fl.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "serving export %q (%d bytes) on %s\n", fl.name, backend.Size(), fl.listen)
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
