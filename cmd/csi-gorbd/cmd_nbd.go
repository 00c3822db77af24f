package main

import "github.com/spf13/cobra"

// nbdCmd groups the NBD commands: serve (this file's sibling) and the
// kernel attach commands (map, unmap, list) in their own files.
var nbdCmd = &cobra.Command{
	Use:   "nbd",
	Short: "Serve block devices over NBD and attach them to the kernel",
}

func init() {
	rootCmd.AddCommand(nbdCmd)
}
