package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd clone|flatten|children`: clone v1/v2 through rbd.Clone,
// flatten through Image.Flatten, and the clone v2 children of a snapshot
// through Image.Children, resolved to names with rbd.ImageName.

func (r *rbdCLI) cloneCmd() *cobra.Command {
	var cf createFlags
	var cloneFormat string
	clone := &cobra.Command{
		Use: "clone [POOL/]PARENT@SNAP [POOL/]CHILD", Short: "Clone a snapshot (clone v1 or v2)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := parseImageSpec(args[0], r.pool, snapRequired)
			if err != nil {
				return err
			}
			cs, err := parseImageSpec(args[1], r.pool, snapForbidden)
			if err != nil {
				return err
			}
			format, ok := map[string]int{"auto": rbd.CloneFormatAuto, "1": rbd.CloneFormatV1, "2": rbd.CloneFormatV2}[cloneFormat]
			if !ok {
				return fmt.Errorf("invalid clone format %q (auto, 1 or 2)", cloneFormat)
			}
			return r.withPool(cmd, ps.Pool, func(ctx context.Context, s *rbdSession) error {
				cio, err := s.conn.OpenIOContext(ctx, cs.Pool)
				if err != nil {
					return fmt.Errorf("pool %q: %w", cs.Pool, err)
				}
				// Like rbd: the default features unless given; the parent's
				// object size and striping unless given (rbd.Clone fills them
				// in when Order is 0).
				o, err := cf.options(ctx, s.conn, rbd.FeaturesDefault)
				if err != nil {
					return err
				}
				o.CloneFormat = format
				_, err = rbd.Clone(ctx, s.io, ps.Image, ps.Snap, cio, cs.Image, o)
				return err
			})
		},
	}
	cf.add(clone)
	clone.Flags().StringVar(&cloneFormat, "rbd-default-clone-format", "auto",
		"auto (v1 while the cluster admits pre-Mimic clients, as rbd), 1 (needs a protected snapshot) or 2")
	return clone
}

func (r *rbdCLI) flattenCmd() *cobra.Command {
	return &cobra.Command{
		Use: "flatten [POOL/]IMAGE", Short: "Copy the parent's data into a clone and detach it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openWrite, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				return img.Flatten(ctx)
			})
		},
	}
}

// childJSON is one entry of `rbd children --format json`.
type childJSON struct {
	Pool      string `json:"pool"`
	Namespace string `json:"pool_namespace"`
	Image     string `json:"image"`
}

func (r *rbdCLI) childrenCmd() *cobra.Command {
	var format string
	children := &cobra.Command{
		Use: "children [POOL/]IMAGE@SNAP", Short: "List the clones of a snapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapRequired, openRead, func(ctx context.Context, s *rbdSession, spec imageSpec, img *rbd.Image) error {
				kids, err := img.Children(ctx, spec.Snap)
				if err != nil {
					return err
				}
				out := make([]childJSON, 0, len(kids))
				for _, k := range kids {
					out = append(out, childNames(ctx, s.conn, k))
				}
				sort.Slice(out, func(i, j int) bool { return out[i].Pool+"/"+out[i].Image < out[j].Pool+"/"+out[j].Image })
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				for _, c := range out {
					if c.Namespace != "" {
						fmt.Fprintf(cmd.OutOrStdout(), "%s/%s/%s\n", c.Pool, c.Namespace, c.Image)
					} else {
						fmt.Fprintf(cmd.OutOrStdout(), "%s/%s\n", c.Pool, c.Image)
					}
				}
				return nil
			})
		},
	}
	formatFlag(children, &format)
	return children
}

// childNames names a clone's pool and image (the id where the name
// cannot be read).
func childNames(ctx context.Context, conn *rados.Conn, k rbd.ChildSpec) childJSON {
	c := childJSON{Pool: poolName(ctx, conn, k.PoolID), Namespace: k.Namespace, Image: k.ImageID}
	if cio, err := conn.OpenIOContextByID(ctx, k.PoolID); err == nil {
		cio.SetNamespace(k.Namespace)
		if name, err := rbd.ImageName(ctx, cio, k.ImageID); err == nil {
			c.Image = name
		}
	}
	return c
}
