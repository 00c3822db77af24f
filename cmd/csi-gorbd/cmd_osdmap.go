package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// osdmapFlags are the map file and the in-memory state changes osdmaptool
// applies before testing (--mark-up-in, --mark-out, --mark-up, --mark-in).
type osdmapFlags struct {
	file     string
	markUpIn bool
	markOut  int32
	markUp   int32
	markIn   int32
}

func (f *osdmapFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.file, "osdmap", "", "binary OSDMap file (ceph osd getmap -o FILE)")
	c.Flags().BoolVar(&f.markUpIn, "mark-up-in", false, "mark all OSDs up and in first (not persisted)")
	c.Flags().Int32Var(&f.markOut, "mark-out", -1, "mark this OSD up but out")
	c.Flags().Int32Var(&f.markUp, "mark-up", -1, "mark this OSD up")
	c.Flags().Int32Var(&f.markIn, "mark-in", -1, "mark this OSD in")
	_ = c.MarkFlagRequired("osdmap")
}

// load reads the map and applies the marks in osdmaptool's order.
func (f *osdmapFlags) load() (*osdmap.OSDMap, error) {
	b, err := os.ReadFile(f.file)
	if err != nil {
		return nil, err
	}
	m, err := osdmap.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.file, err)
	}
	if f.markUpIn {
		for i := int32(0); i < m.MaxOSD; i++ {
			m.SetUp(i)
			m.SetWeight(i, osdmap.WeightIn)
		}
	}
	if f.markOut >= 0 {
		m.SetUp(f.markOut)
		m.SetWeight(f.markOut, osdmap.WeightOut)
	}
	if f.markUp >= 0 {
		m.SetUp(f.markUp)
	}
	if f.markIn >= 0 {
		m.SetWeight(f.markIn, osdmap.WeightIn)
	}
	return m, nil
}

func newOSDMapCmd() *cobra.Command {
	osdmapCmd := &cobra.Command{
		Use:   "osdmap",
		Short: "Inspect OSDMaps and compute placements offline (osdmaptool-compatible output)",
	}

	var mf osdmapFlags
	var pool int64
	mapPGs := &cobra.Command{
		Use:   "map-pgs",
		Short: "Print raw, up and acting sets of every pg, like osdmaptool --test-map-pgs-dump-all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := mf.load()
			if err != nil {
				return err
			}
			ids := make([]int64, 0, len(m.Pools))
			for id := range m.Pools {
				if pool < 0 || id == pool {
					ids = append(ids, id)
				}
			}
			if pool >= 0 && len(ids) == 0 {
				return fmt.Errorf("there is no pool %d", pool)
			}
			slices.Sort(ids)
			w := bufio.NewWriter(cmd.OutOrStdout())
			var mp osdmap.Mapping
			var line []byte
			for _, id := range ids {
				p := m.Pools[id]
				fmt.Fprintf(w, "pool %d pg_num %d\n", id, p.PGNum)
				for ps := uint32(0); ps < p.PGNum; ps++ {
					if err := m.MapPG(osdmap.PG{Pool: id, Seed: ps}, &mp); err != nil {
						return err
					}
					line = mp.AppendDumpLine(line[:0])
					line = append(line, '\n')
					w.Write(line)
				}
			}
			return w.Flush()
		},
	}
	mf.register(mapPGs)
	mapPGs.Flags().Int64Var(&pool, "pool", -1, "only this pool")

	var of osdmapFlags
	var objPool int64
	var ns, key string
	mapObject := &cobra.Command{
		Use:   "map-object OBJECT",
		Short: "Print an object's pg and acting set, like osdmaptool --test-map-object",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := of.load()
			if err != nil {
				return err
			}
			var mp osdmap.Mapping
			if err := m.MapObject(objPool, args[0], key, ns, &mp); err != nil {
				return fmt.Errorf("pool %d: %w", objPool, err)
			}
			out := fmt.Appendf(nil, " object '%s' -> %s -> ", args[0], mp.PG)
			out = osdmap.AppendOSDs(out, mp.Acting)
			out = append(out, '\n')
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	of.register(mapObject)
	mapObject.Flags().Int64Var(&objPool, "pool", 1, "pool id")
	mapObject.Flags().StringVar(&ns, "namespace", "", "object namespace")
	mapObject.Flags().StringVar(&key, "key", "", "object locator key (defaults to the name)")

	osdmapCmd.AddCommand(mapPGs, mapObject)
	return osdmapCmd
}
