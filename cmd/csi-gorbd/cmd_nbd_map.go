package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// defaultNBDStateDir holds the attachment records. It is on /run: the
// records must outlive the serving process but not a reboot, which ends
// every nbd device anyway.
const defaultNBDStateDir = "/run/csi-gorbd/nbd"

// nbdMapOpts are the options of one `nbd map`.
type nbdMapOpts struct {
	memory      string
	file        string
	size        string
	id          string
	device      string
	readOnly    bool
	connections int
	timeout     time.Duration
	deadConn    time.Duration
}

func (n *nbdCLI) mapCmd() *cobra.Command {
	var o nbdMapOpts
	c := &cobra.Command{
		Use:   "map [POOL/IMAGE[@SNAP]]",
		Short: "Attach an export to a kernel /dev/nbdN and serve it in the foreground",
		Long: `Attach an export to the kernel's nbd driver through a socketpair and
serve it until the device is unmapped. Prints the device path.

Stopping the command (SIGINT, SIGTERM, kill -9) does not detach the device:
I/O waits up to --dead-conn-timeout for "csi-gorbd nbd recover" to take the
device over. Only "csi-gorbd nbd unmap" detaches.`,
		Example: `  csi-gorbd nbd map --memory 1G
  csi-gorbd nbd map --file /var/tmp/disk.img --size 10G --connections 2
  csi-gorbd nbd map rbd/vol1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return n.runMap(cmd, args, &o) },
	}
	f := c.Flags()
	f.StringVar(&o.memory, "memory", "", "export a sparse in-memory device of this `SIZE`")
	f.StringVar(&o.file, "file", "", "export this regular `FILE` (created or grown to --size)")
	f.StringVar(&o.size, "size", "", "with --file: create or grow the file to `SIZE`")
	f.StringVar(&o.id, "id", "", "backend identifier (default: the image spec, or memory-<time>)")
	f.StringVar(&o.device, "device", "", "use this `/dev/nbdN` (default: the kernel picks)")
	f.BoolVar(&o.readOnly, "read-only", false, "attach read-only")
	f.IntVar(&o.connections, "connections", 1, "number of sockets (1..16)")
	f.DurationVar(&o.timeout, "timeout", 0, "kernel request timeout; after it the socket is replaced (0: kernel default, 30s, socket kept)")
	f.DurationVar(&o.deadConn, "dead-conn-timeout", attach.DefaultDeadConnTimeout, "how long I/O waits for a restarted server")
	addEncryptionFlags(c)
	return c
}

func (n *nbdCLI) unmapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unmap DEVICE|ID",
		Short: "Detach a /dev/nbdN (by device or backend identifier) and forget it",
		Args:  cobra.ExactArgs(1),
		RunE:  n.runUnmap,
	}
}

func (n *nbdCLI) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"list-mapped"},
		Short:   "List the kernel's connected nbd devices and the recorded attachments",
		Args:    cobra.NoArgs,
		RunE:    n.runList,
	}
}

func (n *nbdCLI) recoverCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "recover",
		Short: "Take over every recorded device after a restart and serve them in the foreground",
		Long: `For every record in the state directory, reopen its backend, hand the
kernel fresh sockets (NBD_CMD_RECONFIGURE with the recorded backend
identifier) and serve them until they are unmapped. In-memory exports cannot
be recovered: their data died with the process that served them.

A read-write RBD map holds the image's owner file under STATE-DIR/owners
while it serves; recover takes it over only from a dead server (a live one
keeps its device), and breaks the exclusive lock the dead server's clients
left at once instead of waiting for their watch to time out.`,
		Args: cobra.NoArgs,
		RunE: n.runRecover,
	}
	c.Flags().DurationVar(&n.lockWait, "lock-wait", 90*time.Second, lockWaitHelp)
	return c
}

// nbdFactory opens the backends named by image spec strings:
// memory:SIZE, file:PATH and POOL/IMAGE[@SNAP] (openRBDForMap).
func (n *nbdCLI) factory(cmd *cobra.Command, recovering bool) attach.Factory {
	return func(ctx context.Context, image string, readOnly bool) (nbd.Backend, error) {
		switch {
		case strings.HasPrefix(image, "memory:"):
			if recovering {
				return nil, errors.New("an in-memory export cannot be recovered: its data died with the process")
			}
			size, err := parseSize(strings.TrimPrefix(image, "memory:"))
			if err != nil {
				return nil, err
			}
			return memory.New(size), nil
		case strings.HasPrefix(image, "file:"):
			return attach.OpenFileBackend(strings.TrimPrefix(image, "file:"), 0, readOnly)
		default:
			return n.openRBDForMap(ctx, cmd, image, readOnly)
		}
	}
}

func (n *nbdCLI) manager(ctx context.Context, cmd *cobra.Command, recovering bool) (*attach.Manager, error) {
	errw := cmd.ErrOrStderr()
	return attach.New(ctx, attach.Config{
		StateDir: n.stateDir,
		Factory:  n.factory(cmd, recovering),
		OnEvent:  func(e attach.Event) { fmt.Fprintln(errw, "csi-gorbd:", e) },
	})
}

func (n *nbdCLI) runMap(cmd *cobra.Command, args []string, fl *nbdMapOpts) error {
	var image string
	given := 0
	if fl.memory != "" {
		given++
		if _, err := parseSize(fl.memory); err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		image = "memory:" + fl.memory
	}
	if fl.file != "" {
		given++
		image = "file:" + fl.file
		if fl.size != "" {
			size, err := parseSize(fl.size)
			if err != nil {
				return fmt.Errorf("--size: %w", err)
			}
			b, err := attach.OpenFileBackend(fl.file, size, false)
			if err != nil {
				return err
			}
			b.Close()
		}
	}
	if len(args) == 1 {
		given++
		image = args[0]
	}
	if given != 1 {
		return errors.New("give exactly one of --memory SIZE, --file FILE or an image")
	}
	id := fl.id
	if id == "" {
		id = image
		if fl.memory != "" {
			id = fmt.Sprintf("memory-%d", time.Now().UnixNano())
		}
	}

	// Serving lives as long as the command; signals stop serving without
	// detaching.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := n.manager(ctx, cmd, false)
	if err != nil {
		return err
	}
	defer m.Close()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	rec, err := m.Attach(actx, attach.Spec{
		ID:              id,
		Image:           image,
		ReadOnly:        fl.readOnly,
		Connections:     fl.connections,
		Device:          fl.device,
		Timeout:         fl.timeout,
		DeadConnTimeout: fl.deadConn,
	})
	cancel()
	if err != nil {
		return err
	}
	if err := m.IOFlusherError(); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "csi-gorbd: warning:", err)
	}
	fmt.Fprintln(cmd.OutOrStdout(), rec.Device())
	select {
	case <-m.Done(rec.Device()):
		if _, err := (attach.Store{Dir: n.stateDir}).Load(rec.Index); err == nil && ctx.Err() == nil {
			return fmt.Errorf("stopped serving %s; it stays attached, waiting for \"csi-gorbd nbd recover\"", rec.Device())
		}
		return nil
	case <-ctx.Done():
		fmt.Fprintf(cmd.ErrOrStderr(), "csi-gorbd: stopped serving %s; the device stays attached for %ds waiting for \"csi-gorbd nbd recover\"\n",
			rec.Device(), rec.DeadConnTimeoutSeconds)
		return nil
	}
}

func (n *nbdCLI) runUnmap(cmd *cobra.Command, args []string) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	m, err := n.manager(ctx, cmd, false)
	if err != nil {
		return err
	}
	defer m.Close()
	err = m.Detach(ctx, args[0])
	if errors.Is(err, attach.ErrNoRecord) {
		// Not ours to remember, but a device: disconnect it like rbd-nbd
		// unmap would.
		if idx, perr := nbdnl.ParseDevice(args[0]); perr == nil {
			return nbdnl.Disconnect(ctx, idx)
		}
	}
	return err
}

func (n *nbdCLI) runRecover(cmd *cobra.Command, _ []string) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := n.manager(ctx, cmd, true)
	if err != nil {
		return err
	}
	defer m.Close()
	recs, rerr := m.Recover(ctx)
	if rerr != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "csi-gorbd:", rerr)
	}
	for _, r := range recs {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", r.Device(), r.ID, r.Image)
	}
	if len(recs) == 0 {
		if rerr != nil {
			return rerr
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "csi-gorbd: nothing to recover")
		return nil
	}
	for _, r := range recs {
		select {
		case <-m.Done(r.Device()):
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func (n *nbdCLI) runList(cmd *cobra.Command, _ []string) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	devs, err := nbdnl.Status(ctx, -1)
	if err != nil {
		return err
	}
	recs, rerr := attach.Store{Dir: n.stateDir}.List()
	byIndex := map[int]*attach.Record{}
	for _, r := range recs {
		byIndex[r.Index] = r
	}
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tID\tIMAGE\tSIZE\tPID\tSTATE")
	seen := map[int]bool{}
	for _, d := range devs {
		r := byIndex[d.Index]
		if !d.Connected && r == nil {
			continue
		}
		seen[d.Index] = true
		id, _ := nbdnl.BackendIdentifier(d.Index)
		size, _ := nbdnl.SizeBytes(d.Index)
		pid := "-"
		if p, err := nbdnl.PID(d.Index); err == nil {
			pid = fmt.Sprint(p)
		} else if p > 0 {
			pid = fmt.Sprintf("%d(gone)", p)
		}
		image, state := "-", "connected"
		switch {
		case !d.Connected:
			state = "stale-record"
		case r != nil && r.ID != id:
			state = "record-mismatch"
		case r == nil:
			state = "connected (no record)"
		}
		if r != nil {
			image = r.Image
		}
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", d.Path(), id, image, size, pid, state)
	}
	for _, r := range recs {
		if !seen[r.Index] {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t-\tstale-record\n", r.Device(), r.ID, r.Image, r.Size)
		}
	}
	w.Flush()
	return rerr
}
