package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd clone|flatten|children`: clone v2 through rbd.Clone,
// flatten through Image.Flatten, and children from the parent header's
// children_list (cls_rbd), resolved to names with dir_get_name.

func init() {
	var cf createFlags
	var cloneFormat string
	clone := &cobra.Command{
		Use: "clone [POOL/]PARENT@SNAP [POOL/]CHILD", Short: "Clone a snapshot (clone v1 or v2)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := parseImageSpec(args[0], 1)
			if err != nil {
				return err
			}
			cs, err := parseImageSpec(args[1], -1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, ps.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
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
			switch cloneFormat {
			case "auto":
				o.CloneFormat = rbd.CloneFormatAuto
			case "1":
				o.CloneFormat = rbd.CloneFormatV1
			case "2":
				o.CloneFormat = rbd.CloneFormatV2
			default:
				return fmt.Errorf("invalid clone format %q (auto, 1 or 2)", cloneFormat)
			}
			_, err = rbd.Clone(ctx, s.io, ps.Image, ps.Snap, cio, cs.Image, o)
			return err
		},
	}
	cf.add(clone)
	clone.Flags().StringVar(&cloneFormat, "rbd-default-clone-format", "auto",
		"auto (v1 while the cluster admits pre-Mimic clients, as rbd), 1 (needs a protected snapshot) or 2")
	rbdCmd.AddCommand(clone)

	rbdCmd.AddCommand(&cobra.Command{
		Use: "flatten [POOL/]IMAGE", Short: "Copy the parent's data into a clone and detach it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withImage(cmd, args[0], -1, nil, func(ctx context.Context, _ imageSpec, img *rbd.Image) error {
				return img.Flatten(ctx)
			})
		},
	})

	var format string
	children := &cobra.Command{
		Use: "children [POOL/]IMAGE@SNAP", Short: "List the clones of a snapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], 1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			img, err := rbd.Open(ctx, s.io, spec.Image, &rbd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			st := img.Stat()
			img.Close(ctx)
			snapID, found := uint64(0), false
			for _, sn := range st.Snapshots {
				if sn.Name == spec.Snap {
					snapID, found = sn.ID, true
				}
			}
			if !found {
				return fmt.Errorf("snapshot %q: %w", spec.Snap, rbd.ErrNotFound)
			}
			b, err := s.io.Exec(ctx, rbd.HeaderObjectName(st.ID), "rbd", "children_list", u64LE(snapID))
			if err != nil {
				return fmt.Errorf("children_list: %w", err)
			}
			type child struct {
				Pool      string `json:"pool"`
				Namespace string `json:"pool_namespace"`
				Image     string `json:"image"`
			}
			out := []child{}
			d := encoding.NewDecoder(b)
			n := d.Count(14)
			for i := 0; i < n && d.Err() == nil; i++ {
				// ChildImageSpec v2: i64 pool_id, string image_id, then (v2)
				// string pool_namespace.
				body, h := d.Struct(1)
				pool, id, ns := body.I64(), body.String(), ""
				if h.Version >= 2 {
					ns = body.String()
				}
				if err := d.Err(); err != nil {
					break
				}
				c := child{Pool: poolName(ctx, s.conn, pool), Namespace: ns, Image: id}
				if cio, err := s.conn.OpenIOContextByID(ctx, pool); err == nil {
					cio.SetNamespace(ns)
					e := encoding.NewEncoder(nil)
					e.String(id)
					if nb, err := cio.Exec(ctx, "rbd_directory", "rbd", "dir_get_name", e.B); err == nil {
						nd := encoding.NewDecoder(nb)
						if name := nd.String(); nd.Err() == nil {
							c.Image = name
						}
					}
				}
				out = append(out, c)
			}
			if err := d.Err(); err != nil {
				return errors.Join(errors.New("children_list reply"), err)
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
		},
	}
	children.Flags().StringVar(&format, "format", "plain", "plain or json")
	rbdCmd.AddCommand(children)
}
