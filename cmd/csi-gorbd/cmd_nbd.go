package main

import (
	"time"

	"github.com/spf13/cobra"
)

// nbdCLI is the state of one `nbd` command group: serve (cmd_nbd_serve.go),
// the kernel attach commands map, unmap, list and recover
// (cmd_nbd_map.go), and RBD images for both (cmd_nbd_rbd.go).
type nbdCLI struct {
	ceph     *cephFlags
	stateDir string        // attachment records (map, unmap, list, recover)
	lockWait time.Duration // recover: see lockWaitHelp
}

func newNBDCmd(g *cephFlags) *cobra.Command {
	n := &nbdCLI{ceph: g}
	c := &cobra.Command{
		Use:   "nbd",
		Short: "Serve block devices over NBD and attach them to the kernel",
	}
	c.AddCommand(n.serveCmd())
	for _, sub := range []*cobra.Command{n.mapCmd(), n.unmapCmd(), n.listCmd(), n.recoverCmd()} {
		sub.Flags().StringVar(&n.stateDir, "state-dir", defaultNBDStateDir, "attachment records `DIR`")
		c.AddCommand(sub)
	}
	return c
}
