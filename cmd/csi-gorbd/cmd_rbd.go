package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd ...`: a subset of the rbd CLI on package rbd. This file
// holds the command group, the POOL/IMAGE[@SNAP] spec and size parsing
// shared by the subcommands, and create/ls/rm/resize/rename.

// rbdCLI is the state of one `rbd` command group: the global ceph flags
// and its own -p/--pool.
type rbdCLI struct {
	ceph *cephFlags
	pool string
}

func newRBDCmd(g *cephFlags) *cobra.Command {
	r := &rbdCLI{ceph: g}
	c := &cobra.Command{
		Use:   "rbd",
		Short: "Manage RBD images (a subset of the rbd CLI, pure Go)",
	}
	c.PersistentFlags().StringVarP(&r.pool, "pool", "p", "", "pool name (default: from the spec, else rbd)")
	c.AddCommand(r.createCmd(), r.listCmd(), r.infoCmd(), r.removeCmd(), r.resizeCmd(), r.renameCmd(),
		r.snapCmd(), r.cloneCmd(), r.flattenCmd(), r.childrenCmd(), r.trashCmd(), r.imageMetaCmd(),
		r.exportCmd(), r.importCmd(), r.benchCmd(), r.encryptionCmd())
	return c
}

// errNotSupported is returned by the subcommands package rbd cannot back yet.
func errNotSupported(what string) error {
	return fmt.Errorf("rbd %s: not supported yet", what)
}

// imageSpec is a parsed [POOL/]IMAGE[@SNAP].
type imageSpec struct {
	Pool, Image, Snap string
}

func (s imageSpec) String() string {
	out := s.Pool + "/" + s.Image
	if s.Snap != "" {
		out += "@" + s.Snap
	}
	return out
}

// What an image spec says about a snapshot (parseImageSpec's snap).
const (
	snapForbidden = -1
	snapOptional  = 0
	snapRequired  = 1
)

// parseImageSpec splits [POOL/]IMAGE[@SNAP] like rbd: the pool comes from
// the spec, else defPool (-p), else "rbd". snap is snapRequired,
// snapForbidden or snapOptional.
func parseImageSpec(arg, defPool string, snap int) (imageSpec, error) {
	var s imageSpec
	rest := arg
	if p, r, ok := strings.Cut(rest, "/"); ok {
		s.Pool, rest = p, r
	}
	s.Image, s.Snap, _ = strings.Cut(rest, "@")
	if s.Pool == "" {
		s.Pool = defPool
	}
	if s.Pool == "" {
		s.Pool = "rbd"
	}
	switch {
	case s.Image == "":
		return s, fmt.Errorf("image name was not specified in %q", arg)
	case snap == snapRequired && s.Snap == "":
		return s, fmt.Errorf("snapshot name was not specified in %q", arg)
	case snap == snapForbidden && s.Snap != "":
		return s, fmt.Errorf("snapshot name specified for a command that doesn't use it: %q", arg)
	}
	return s, nil
}

// poolArg is the pool of `ls [POOL]`-style commands: the argument, else
// -p/--pool, else rbd.
func (r *rbdCLI) poolArg(args []string) string {
	pool := r.pool
	if len(args) == 1 {
		pool = args[0]
	}
	if pool == "" {
		pool = "rbd"
	}
	return pool
}

// parseSizeMiB parses an rbd --size: a bare number is MiB; suffixes
// B, K, M, G, T, P (optionally followed by "iB" or "B") are powers of 1024.
func parseSizeMiB(s string) (uint64, error) { return parseBytes(s, 20) }

// parseBytes parses a byte count; a bare number is scaled by 1<<defShift.
func parseBytes(s string, defShift uint) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	shift := defShift
	unit := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(t[i:], "iB"), "B"))
	switch {
	case unit == "" && strings.HasSuffix(t[i:], "B"):
		shift = 0
	case unit == "":
	default:
		var ok bool
		if shift, ok = binaryShift(unit); !ok {
			return 0, fmt.Errorf("invalid size %q", s)
		}
	}
	if shift > 0 && n > (^uint64(0))>>shift {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n << shift, nil
}

// binaryShift is the power of two of a K, M, G, T or P unit.
func binaryShift(unit string) (uint, bool) {
	i := strings.Index("KMGTP", unit)
	if len(unit) != 1 || i < 0 {
		return 0, false
	}
	return uint(10 * (i + 1)), true
}

// rbdSession is a connection and one pool's I/O context.
type rbdSession struct {
	conn *rados.Conn
	io   *rados.IOContext
}

func (s *rbdSession) Close() { s.conn.Close() }

// withPool connects, opens pool and runs fn; the connection is closed
// afterwards.
func (r *rbdCLI) withPool(cmd *cobra.Command, pool string, fn func(ctx context.Context, s *rbdSession) error) error {
	conn, io, err := r.ceph.openPool(cmd, pool)
	if err != nil {
		return err
	}
	s := &rbdSession{conn: conn, io: io}
	defer s.Close()
	return fn(cmd.Context(), s)
}

// withSpec parses an image spec (snap: snapRequired, snapForbidden or
// snapOptional), opens its pool and runs fn.
func (r *rbdCLI) withSpec(cmd *cobra.Command, arg string, snap int, fn func(ctx context.Context, s *rbdSession, spec imageSpec) error) error {
	spec, err := parseImageSpec(arg, r.pool, snap)
	if err != nil {
		return err
	}
	return r.withPool(cmd, spec.Pool, func(ctx context.Context, s *rbdSession) error { return fn(ctx, s, spec) })
}

// How withImage opens an image.
type openMode int

const (
	openWrite  openMode = iota // read-write, at the head
	openRead                   // read-only, at the head
	openAtSnap                 // read-only, at the spec's snapshot if it names one
)

// withImage is withSpec that also opens the image; it is closed afterwards.
func (r *rbdCLI) withImage(cmd *cobra.Command, arg string, snap int, mode openMode,
	fn func(ctx context.Context, s *rbdSession, spec imageSpec, img *rbd.Image) error) error {
	return r.withSpec(cmd, arg, snap, func(ctx context.Context, s *rbdSession, spec imageSpec) error {
		var opts *rbd.OpenOptions
		switch mode {
		case openRead:
			opts = &rbd.OpenOptions{ReadOnly: true}
		case openAtSnap:
			opts = &rbd.OpenOptions{ReadOnly: true, Snapshot: spec.Snap}
		}
		img, err := rbd.Open(ctx, s.io, spec.Image, opts)
		if err != nil {
			return err
		}
		defer img.Close(ctx)
		return fn(ctx, s, spec, img)
	})
}

// createFlags are rbd's image-shaping options (create, import, clone).
type createFlags struct {
	objectSize  string
	order       uint8
	features    []string
	stripeUnit  string
	stripeCount uint64
	dataPool    string
}

func (f *createFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.objectSize, "object-size", "", "object size in B/K/M (bare number: bytes), default 4M")
	fl.Uint8Var(&f.order, "order", 0, "object order (deprecated form of --object-size)")
	fl.StringSliceVar(&f.features, "image-feature", nil, "image features (repeatable or comma list); default layering,exclusive-lock,object-map,fast-diff,deep-flatten")
	fl.StringVar(&f.stripeUnit, "stripe-unit", "", "stripe unit in B/K/M")
	fl.Uint64Var(&f.stripeCount, "stripe-count", 0, "stripe count")
	fl.StringVar(&f.dataPool, "data-pool", "", "data pool")
}

func (f *createFlags) options(ctx context.Context, conn *rados.Conn, defFeatures uint64) (*rbd.CreateOptions, error) {
	o := &rbd.CreateOptions{Order: f.order, Features: defFeatures}
	if f.objectSize != "" {
		n, err := parseBytes(f.objectSize, 0)
		if err != nil {
			return nil, err
		}
		if n < 4096 || n&(n-1) != 0 {
			return nil, fmt.Errorf("object size %d is not a power of two ≥ 4 KiB", n)
		}
		o.Order = uint8(bits.TrailingZeros64(n))
	}
	if len(f.features) > 0 {
		var names []string
		for _, s := range f.features {
			names = append(names, strings.Split(s, ",")...)
		}
		fs, err := rbd.ParseFeatures(names...)
		if err != nil {
			return nil, err
		}
		o.Features = fs
	}
	if f.stripeUnit != "" || f.stripeCount != 0 {
		su, err := parseBytes(f.stripeUnit, 0)
		if f.stripeUnit == "" {
			su, err = 1<<orDefault(o.Order, 22), nil
		}
		if err != nil {
			return nil, err
		}
		sc := f.stripeCount
		if sc == 0 {
			sc = 1
		}
		if su != 1<<orDefault(o.Order, 22) || sc != 1 {
			o.StripeUnit, o.StripeCount = su, sc
		}
	}
	if f.dataPool != "" {
		dio, err := conn.OpenIOContext(ctx, f.dataPool)
		if err != nil {
			return nil, fmt.Errorf("data pool %q: %w", f.dataPool, err)
		}
		o.DataPool, o.DataPoolSet = dio.PoolID(), true
	}
	return o, nil
}

func orDefault(v, d uint8) uint8 {
	if v == 0 {
		return d
	}
	return v
}

func (r *rbdCLI) createCmd() *cobra.Command {
	var cf createFlags
	var size string
	c := &cobra.Command{
		Use: "create [POOL/]IMAGE --size SIZE", Short: "Create an empty image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], r.pool, snapForbidden)
			if err != nil {
				return err
			}
			if size == "" {
				return errors.New("must specify --size")
			}
			n, err := parseSizeMiB(size)
			if err != nil {
				return err
			}
			return r.withPool(cmd, spec.Pool, func(ctx context.Context, s *rbdSession) error {
				o, err := cf.options(ctx, s.conn, rbd.FeaturesDefault)
				if err != nil {
					return err
				}
				_, err = rbd.Create(ctx, s.io, spec.Image, n, o)
				return err
			})
		},
	}
	c.Flags().StringVarP(&size, "size", "s", "", "image size (bare number: MiB; or with K/M/G/T)")
	cf.add(c)
	return c
}

// formatFlag adds rbd's --format plain|json to c.
func formatFlag(c *cobra.Command, format *string) {
	c.Flags().StringVar(format, "format", "plain", "plain or json")
}

func (r *rbdCLI) listCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use: "ls [POOL]", Aliases: []string{"list"}, Short: "List images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withPool(cmd, r.poolArg(args), func(ctx context.Context, s *rbdSession) error {
				m, err := rbd.ListImages(ctx, s.io)
				if err != nil {
					return err
				}
				names := make([]string, 0, len(m))
				for k := range m {
					names = append(names, k)
				}
				sort.Strings(names)
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), names)
				}
				for _, n := range names {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				return nil
			})
		},
	}
	formatFlag(c, &format)
	return c
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (r *rbdCLI) removeCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rm [POOL/]IMAGE", Aliases: []string{"remove"}, Short: "Delete an image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withSpec(cmd, args[0], snapForbidden, func(ctx context.Context, s *rbdSession, spec imageSpec) error {
				return rbd.Remove(ctx, s.io, spec.Image)
			})
		},
	}
}

func (r *rbdCLI) resizeCmd() *cobra.Command {
	var size string
	var allowShrink bool
	c := &cobra.Command{
		Use: "resize [POOL/]IMAGE --size SIZE", Short: "Resize an image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSizeMiB(size)
			if err != nil {
				return err
			}
			return r.withImage(cmd, args[0], snapForbidden, openWrite, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				if n < img.Size() && !allowShrink {
					return errors.New("shrinking an image is only allowed with the --allow-shrink flag")
				}
				return img.Resize(ctx, n)
			})
		},
	}
	c.Flags().StringVarP(&size, "size", "s", "", "new size (bare number: MiB)")
	c.Flags().BoolVar(&allowShrink, "allow-shrink", false, "permit shrinking")
	return c
}

// renameCmd is `rbd rename|mv [POOL/]SRC [POOL/]DST`: rbd.Rename, within
// one pool, as rbd allows.
func (r *rbdCLI) renameCmd() *cobra.Command {
	return &cobra.Command{
		Use: "rename [POOL/]SRC [POOL/]DST", Aliases: []string{"mv"}, Short: "Rename an image", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseImageSpec(args[0], r.pool, snapForbidden)
			if err != nil {
				return err
			}
			dst, err := parseImageSpec(args[1], r.pool, snapForbidden)
			if err != nil {
				return err
			}
			if src.Pool != dst.Pool {
				return errors.New("mv/rename across pools not supported")
			}
			return r.withPool(cmd, src.Pool, func(ctx context.Context, s *rbdSession) error {
				return rbd.Rename(ctx, s.io, src.Image, dst.Image)
			})
		},
	}
}
