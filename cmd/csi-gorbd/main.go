// Command csi-gorbd is the csi-gorbd CSI driver and its Ceph tools in one
// static binary: the CSI plugin (controller, node), and ceph/rados/rbd/nbd
// style commands that use the same pure-Go client.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/driver"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "csi-gorbd:", err)
		os.Exit(exitCode(err))
	}
}

// newRootCmd builds the whole command tree. Each command group lives in
// its own cmd_*.go file as a constructor; the ceph-CLI-style global flags
// are one value shared by the commands of this tree, so every call (and
// every test) gets a fresh tree with its own flags.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "csi-gorbd",
		Short:         "Ceph RBD CSI driver and tools on a pure-Go Ceph client",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := &cephFlags{}
	g.register(root)
	for _, mode := range []string{driver.ModeController, driver.ModeNode, driver.ModeAll} {
		root.AddCommand(newCSICmd(mode))
	}
	root.AddCommand(
		newCSIClientCmd(g),
		newRBDCmd(g),
		newNBDCmd(g),
		newBenchCmd(g),
		newOSDCmd(g),
		newOSDMapCmd(),
		newMonCommandCmd(g),
		newStatusCmd(g),
		newVersionCmd(),
	)
	return root
}

// exitError carries a specific process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
