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
	"syscall"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd ...`: a subset of the rbd CLI on package rbd. This file
// holds the command group, the POOL/IMAGE[@SNAP] spec and size parsing
// shared by the subcommands, and create/ls/info/rm/resize.

var rbdCmd = &cobra.Command{
	Use:   "rbd",
	Short: "Manage RBD images (a subset of the rbd CLI, pure Go)",
}

var rbdFlags struct {
	pool string
}

func init() {
	rbdCmd.PersistentFlags().StringVarP(&rbdFlags.pool, "pool", "p", "", "pool name (default: from the spec, else rbd)")
	rootCmd.AddCommand(rbdCmd)
	addRBDCreate()
	addRBDList()
	addRBDInfo()
	addRBDRemove()
	addRBDResize()
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

// parseImageSpec splits [POOL/]IMAGE[@SNAP] like rbd: the pool comes from
// the spec, else -p, else "rbd". snap says whether a snapshot is
// required (1), forbidden (-1) or optional (0).
func parseImageSpec(arg string, snap int) (imageSpec, error) {
	var s imageSpec
	rest := arg
	if p, r, ok := strings.Cut(rest, "/"); ok {
		s.Pool, rest = p, r
	}
	s.Image, s.Snap, _ = strings.Cut(rest, "@")
	if s.Pool == "" {
		s.Pool = rbdFlags.pool
	}
	if s.Pool == "" {
		s.Pool = "rbd"
	}
	switch {
	case s.Image == "":
		return s, fmt.Errorf("image name was not specified in %q", arg)
	case snap > 0 && s.Snap == "":
		return s, fmt.Errorf("snapshot name was not specified in %q", arg)
	case snap < 0 && s.Snap != "":
		return s, fmt.Errorf("snapshot name specified for a command that doesn't use it: %q", arg)
	}
	return s, nil
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
	switch u := strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(t[i:], "iB"), "B")); u {
	case "":
		if strings.HasSuffix(t[i:], "B") {
			shift = 0
		}
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
		return 0, fmt.Errorf("invalid size %q", s)
	}
	if shift > 0 && n > (^uint64(0))>>shift {
		return 0, fmt.Errorf("size %q too large", s)
	}
	return n << shift, nil
}

// rbdSession is a connection and one pool's I/O context.
type rbdSession struct {
	conn *rados.Conn
	io   *rados.IOContext
}

func (s *rbdSession) Close() { s.conn.Close() }

func openRBDPool(cmd *cobra.Command, pool string) (*rbdSession, error) {
	conn, err := connectCeph(cmd)
	if err != nil {
		return nil, err
	}
	io, err := conn.OpenIOContext(cmd.Context(), pool)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pool %q: %w", pool, err)
	}
	return &rbdSession{conn: conn, io: io}, nil
}

// withImage parses an image spec (snap: 1 required, 0 forbidden, -1
// optional), connects, opens the image with opts and runs fn; the image and
// the connection are closed afterwards.
func withImage(cmd *cobra.Command, arg string, snap int, opts *rbd.OpenOptions,
	fn func(ctx context.Context, spec imageSpec, img *rbd.Image) error) error {
	spec, err := parseImageSpec(arg, snap)
	if err != nil {
		return err
	}
	s, err := openRBDPool(cmd, spec.Pool)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx := cmd.Context()
	img, err := rbd.Open(ctx, s.io, spec.Image, opts)
	if err != nil {
		return err
	}
	defer img.Close(ctx)
	return fn(ctx, spec, img)
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

func addRBDCreate() {
	var cf createFlags
	var size string
	c := &cobra.Command{
		Use: "create [POOL/]IMAGE --size SIZE", Short: "Create an empty image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], -1)
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
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			o, err := cf.options(cmd.Context(), s.conn, rbd.FeaturesDefault)
			if err != nil {
				return err
			}
			_, err = rbd.Create(cmd.Context(), s.io, spec.Image, n, o)
			return err
		},
	}
	c.Flags().StringVarP(&size, "size", "s", "", "image size (bare number: MiB; or with K/M/G/T)")
	cf.add(c)
	rbdCmd.AddCommand(c)
}

// listImages returns the pool's images (name → id) from rbd_directory.
func listImages(ctx context.Context, io *rados.IOContext) (map[string]string, error) {
	out := map[string]string{}
	start := ""
	for {
		e := encoding.NewEncoder(nil)
		e.String(start)
		e.U64(1024)
		b, err := io.Exec(ctx, "rbd_directory", "rbd", "dir_list", e.B)
		if errors.Is(err, syscall.ENOENT) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		d := encoding.NewDecoder(b)
		n := d.Count(8)
		last := ""
		for i := 0; i < n && d.Err() == nil; i++ {
			k := d.String()
			out[k] = d.String()
			last = k
		}
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("dir_list reply: %w", err)
		}
		if n < 1024 {
			return out, nil
		}
		start = last
	}
}

// poolArg is the pool of `ls [POOL]`-style commands: the argument, else
// -p/--pool, else rbd.
func poolArg(args []string) string {
	pool := rbdFlags.pool
	if len(args) == 1 {
		pool = args[0]
	}
	if pool == "" {
		pool = "rbd"
	}
	return pool
}

func addRBDList() {
	var format string
	c := &cobra.Command{
		Use: "ls [POOL]", Aliases: []string{"list"}, Short: "List images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pool := poolArg(args)
			s, err := openRBDPool(cmd, pool)
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := listImages(cmd.Context(), s.io)
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
		},
	}
	c.Flags().StringVar(&format, "format", "plain", "plain or json")
	rbdCmd.AddCommand(c)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// rbdInfoJSON is `rbd info --format json`'s shape (without timestamps
// and op_features, which package rbd does not expose).
type rbdInfoJSON struct {
	Name            string         `json:"name"`
	ID              string         `json:"id"`
	Size            uint64         `json:"size"`
	Objects         uint64         `json:"objects"`
	Order           uint8          `json:"order"`
	ObjectSize      uint64         `json:"object_size"`
	SnapshotCount   int            `json:"snapshot_count"`
	DataPool        string         `json:"data_pool,omitempty"`
	BlockNamePrefix string         `json:"block_name_prefix"`
	Format          int            `json:"format"`
	Features        []string       `json:"features"`
	Flags           []string       `json:"flags"`
	StripeUnit      uint64         `json:"stripe_unit,omitempty"`
	StripeCount     uint64         `json:"stripe_count,omitempty"`
	Parent          *rbdParentJSON `json:"parent,omitempty"`
}

type rbdParentJSON struct {
	Pool      string `json:"pool"`
	Namespace string `json:"pool_namespace"`
	Image     string `json:"image"`
	ID        string `json:"id"`
	Snapshot  string `json:"snapshot"`
	Overlap   uint64 `json:"overlap"`
}

// poolName resolves a pool id through the OSD map (pool name on error).
func poolName(ctx context.Context, conn *rados.Conn, id int64) string {
	if io, err := conn.OpenIOContextByID(ctx, id); err == nil {
		return io.PoolName()
	}
	return strconv.FormatInt(id, 10)
}

func addRBDInfo() {
	var format string
	c := &cobra.Command{
		Use: "info [POOL/]IMAGE[@SNAP]", Short: "Show image information", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], 0)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			img, err := rbd.Open(ctx, s.io, spec.Image, &rbd.OpenOptions{ReadOnly: true, Snapshot: spec.Snap})
			if err != nil {
				return err
			}
			defer img.Close(ctx)
			st := img.Stat()
			j := rbdInfoJSON{Name: spec.Image, ID: st.ID, Size: st.Size, Objects: st.ObjectCount, Order: st.Order,
				ObjectSize: st.ObjectSize, SnapshotCount: len(st.Snapshots), BlockNamePrefix: st.ObjectPrefix, Format: 2,
				Features: rbd.FeatureNames(st.Features), Flags: []string{}}
			if j.Features == nil {
				j.Features = []string{}
			}
			if st.Flags&rbd.FlagObjectMapInvalid != 0 {
				j.Flags = append(j.Flags, "object map invalid")
			}
			if st.Flags&rbd.FlagFastDiffInvalid != 0 {
				j.Flags = append(j.Flags, "fast diff invalid")
			}
			if st.Features&rbd.FeatureStripingV2 != 0 {
				j.StripeUnit, j.StripeCount = st.Layout.StripeUnit, st.Layout.StripeCount
			}
			if st.DataPool >= 0 {
				j.DataPool = poolName(ctx, s.conn, st.DataPool)
			}
			if p := st.Parent; p != nil {
				j.Parent = &rbdParentJSON{Pool: poolName(ctx, s.conn, p.PoolID), Namespace: p.Namespace, ID: p.ImageID, Overlap: st.Overlap}
				if pio, err := s.conn.OpenIOContextByID(ctx, p.PoolID); err == nil {
					pio.SetNamespace(p.Namespace)
					if pimg, err := rbd.OpenByID(ctx, pio, p.ImageID, &rbd.OpenOptions{ReadOnly: true}); err == nil {
						pst := pimg.Stat()
						j.Parent.Image = pst.Name
						for _, sn := range pst.Snapshots {
							if sn.ID == p.SnapID {
								j.Parent.Snapshot = sn.Name
							}
						}
						pimg.Close(ctx)
					}
				}
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), j)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "rbd image '%s':\n", j.Name)
			fmt.Fprintf(w, "\tsize %s in %d objects\n", bytesIEC(j.Size), j.Objects)
			fmt.Fprintf(w, "\torder %d (%s objects)\n", j.Order, bytesIEC(j.ObjectSize))
			fmt.Fprintf(w, "\tsnapshot_count: %d\n", j.SnapshotCount)
			fmt.Fprintf(w, "\tid: %s\n", j.ID)
			if j.DataPool != "" {
				fmt.Fprintf(w, "\tdata_pool: %s\n", j.DataPool)
			}
			fmt.Fprintf(w, "\tblock_name_prefix: %s\n", j.BlockNamePrefix)
			fmt.Fprintf(w, "\tformat: 2\n")
			fmt.Fprintf(w, "\tfeatures: %s\n", strings.Join(j.Features, ", "))
			fmt.Fprintf(w, "\tflags: %s\n", strings.Join(j.Flags, ", "))
			if j.StripeUnit != 0 {
				fmt.Fprintf(w, "\tstripe unit: %s\n\tstripe count: %d\n", bytesIEC(j.StripeUnit), j.StripeCount)
			}
			if p := j.Parent; p != nil {
				fmt.Fprintf(w, "\tparent: %s/%s@%s\n\toverlap: %s\n", p.Pool, p.Image, p.Snapshot, bytesIEC(p.Overlap))
			}
			return nil
		},
	}
	c.Flags().StringVar(&format, "format", "plain", "plain or json")
	rbdCmd.AddCommand(c)
}

func addRBDRemove() {
	c := &cobra.Command{
		Use: "rm [POOL/]IMAGE", Aliases: []string{"remove"}, Short: "Delete an image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], -1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			return rbd.Remove(cmd.Context(), s.io, spec.Image)
		},
	}
	rbdCmd.AddCommand(c)
}

func addRBDResize() {
	var size string
	var allowShrink bool
	c := &cobra.Command{
		Use: "resize [POOL/]IMAGE --size SIZE", Short: "Resize an image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseSizeMiB(size)
			if err != nil {
				return err
			}
			return withImage(cmd, args[0], -1, nil, func(ctx context.Context, _ imageSpec, img *rbd.Image) error {
				if n < img.Size() && !allowShrink {
					return errors.New("shrinking an image is only allowed with the --allow-shrink flag")
				}
				return img.Resize(ctx, n)
			})
		},
	}
	c.Flags().StringVarP(&size, "size", "s", "", "new size (bare number: MiB)")
	c.Flags().BoolVar(&allowShrink, "allow-shrink", false, "permit shrinking")
	rbdCmd.AddCommand(c)
}

// u64LE encodes a little-endian u64 class-call argument.
func u64LE(v uint64) []byte {
	e := encoding.NewEncoder(nil)
	e.U64(v)
	return e.B
}
