package main

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

func newOSDCmd(g *cephFlags) *cobra.Command {
	osdCmd := &cobra.Command{
		Use:   "osd",
		Short: "OSD queries computed from the cluster's live OSDMap",
	}
	var ns string
	mapCmd := &cobra.Command{
		Use:   "map POOL OBJECT [NAMESPACE]",
		Short: "Show where an object is placed, printed like `ceph osd map`",
		Long: `Compute an object's placement group and up/acting OSDs from the newest
OSDMap, locally (the monitor is only asked for its newest epoch). The line
matches ceph osd map:
  osdmap e37 pool 'rbd' (1) object 'foo' -> pg 1.7fc1f406 (1.6) -> up ([0], p0) acting ([0], p0)`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 3 {
				ns = args[2]
			}
			conn, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx := cmd.Context()
			if err := conn.WaitForLatestOSDMap(ctx); err != nil {
				return err
			}
			m := conn.OSDMap()
			line, err := osdMapLine(m, args[0], args[1], ns)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), line)
			return nil
		},
	}
	mapCmd.Flags().StringVarP(&ns, "namespace", "N", "", "object namespace")
	osdCmd.AddCommand(mapCmd)
	return osdCmd
}

// osdMapLine formats one placement as OSDMonitor's "osd map" does.
func osdMapLine(m *osdmap.OSDMap, pool, oid, ns string) (string, error) {
	id, ok := m.PoolByName(pool)
	if !ok {
		return "", &exitError{code: errnoExit(syscall.ENOENT),
			err: fmt.Errorf("Error ENOENT: pool %s does not exist", pool)}
	}
	raw, err := m.ObjectToPG(id, oid, "", ns)
	if err != nil {
		if errors.Is(err, osdmap.ErrNoPool) {
			return "", fmt.Errorf("%w: %s", rados.ErrPoolNotFound, pool)
		}
		return "", err
	}
	var mp osdmap.Mapping
	if err := m.MapPG(raw, &mp); err != nil {
		return "", err
	}
	full := oid
	if ns != "" {
		full = ns + "/" + oid
	}
	b := []byte("osdmap e")
	b = strconv.AppendUint(b, uint64(m.Epoch), 10)
	b = fmt.Appendf(b, " pool '%s' (%d) object '%s' -> pg %s (%s) -> up (", pool, id, full, raw, mp.PG)
	b = osdmap.AppendOSDs(b, mp.Up)
	b = fmt.Appendf(b, ", p%d) acting (", mp.UpPrimary)
	b = osdmap.AppendOSDs(b, mp.Acting)
	b = fmt.Appendf(b, ", p%d)", mp.ActingPrimary)
	return string(b), nil
}
