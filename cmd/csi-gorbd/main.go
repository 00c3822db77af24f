// Command csi-gorbd is the csi-gorbd CSI driver and its Ceph tools in one
// static binary: the CSI plugin (controller, node), and ceph/rados/rbd/nbd
// style commands that use the same pure-Go client.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the top of the command tree. Each command lives in its own
// cmd_*.go file and adds itself in an init function.
var rootCmd = &cobra.Command{
	Use:           "csi-gorbd",
	Short:         "Ceph RBD CSI driver and tools on a pure-Go Ceph client",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "csi-gorbd:", err)
		os.Exit(exitCode(err))
	}
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
