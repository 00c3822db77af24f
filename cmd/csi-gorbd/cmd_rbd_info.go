package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd info`: the image's header as rbd prints it.

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

func (r *rbdCLI) infoCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use: "info [POOL/]IMAGE[@SNAP]", Short: "Show image information", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapOptional, openAtSnap, func(ctx context.Context, s *rbdSession, spec imageSpec, img *rbd.Image) error {
				j := imageInfo(ctx, s.conn, spec.Image, img)
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), j)
				}
				printImageInfo(cmd.OutOrStdout(), j)
				return nil
			})
		},
	}
	formatFlag(c, &format)
	return c
}

// imageInfo collects what rbd info shows of img.
func imageInfo(ctx context.Context, conn *rados.Conn, name string, img *rbd.Image) rbdInfoJSON {
	st := img.Stat()
	j := rbdInfoJSON{Name: name, ID: st.ID, Size: st.Size, Objects: st.ObjectCount, Order: st.Order,
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
		j.DataPool = poolName(ctx, conn, st.DataPool)
	}
	if p := st.Parent; p != nil {
		j.Parent = &rbdParentJSON{Pool: poolName(ctx, conn, p.PoolID), Namespace: p.Namespace, ID: p.ImageID, Overlap: st.Overlap}
		j.Parent.Image, j.Parent.Snapshot = parentNames(ctx, conn, *p)
	}
	return j
}

// parentNames looks up the names of a clone's parent image and snapshot
// ("" for what cannot be read).
func parentNames(ctx context.Context, conn *rados.Conn, p rbd.ParentSpec) (image, snap string) {
	pio, err := conn.OpenIOContextByID(ctx, p.PoolID)
	if err != nil {
		return "", ""
	}
	pio.SetNamespace(p.Namespace)
	pimg, err := rbd.OpenByID(ctx, pio, p.ImageID, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return "", ""
	}
	defer pimg.Close(ctx)
	pst := pimg.Stat()
	for _, sn := range pst.Snapshots {
		if sn.ID == p.SnapID {
			snap = sn.Name
		}
	}
	return pst.Name, snap
}

func printImageInfo(w io.Writer, j rbdInfoJSON) {
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
}
