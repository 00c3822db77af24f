package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

func newMonCommandCmd(g *cephFlags) *cobra.Command {
	var inFile, outFile string
	c := &cobra.Command{
		Use:   "mon-command JSON",
		Short: "Send a JSON command to the monitors and print the answer",
		Long: `Send one monitor command, e.g.
  csi-gorbd mon-command '{"prefix":"osd pool ls","format":"json"}'
The output goes to stdout (or -o FILE); the monitor's status text goes to
stderr. On failure the exit code is the monitor's errno and the message is
the monitor's error text.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in []byte
			if inFile != "" {
				var err error
				if inFile == "-" {
					in, err = io.ReadAll(cmd.InOrStdin())
				} else {
					in, err = os.ReadFile(inFile)
				}
				if err != nil {
					return err
				}
			}
			conn, err := g.connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			out, status, err := conn.MonCommand(cmd.Context(), args[0], in)
			if err != nil {
				var me *rados.MonError
				if errors.As(err, &me) {
					msg := strings.TrimSpace(me.Status)
					if msg == "" {
						msg = me.Errno.Error()
					}
					return &exitError{code: errnoExit(me.Errno), err: fmt.Errorf("Error %s: %s", errnoName(me.Errno), msg)}
				}
				return err
			}
			if status != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), status)
			}
			if outFile != "" && outFile != "-" {
				return os.WriteFile(outFile, out, 0o644)
			}
			w := cmd.OutOrStdout()
			if _, err := w.Write(out); err != nil {
				return err
			}
			if len(out) > 0 && out[len(out)-1] != '\n' {
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&inFile, "in-file", "i", "", "send this file's contents as input (- for stdin)")
	c.Flags().StringVarP(&outFile, "out-file", "o", "", "write the output to this file")
	return c
}

func errnoExit(e syscall.Errno) int {
	if e > 0 && e < 256 {
		return int(e)
	}
	return 1
}

// errnoName prints errnos the way the ceph CLI does (EINVAL, ENOENT, ...).
func errnoName(e syscall.Errno) string {
	names := map[syscall.Errno]string{
		syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EIO: "EIO", syscall.EAGAIN: "EAGAIN",
		syscall.EACCES: "EACCES", syscall.EBUSY: "EBUSY", syscall.EEXIST: "EEXIST", syscall.EINVAL: "EINVAL",
		syscall.ENOSPC: "ENOSPC", syscall.ERANGE: "ERANGE", syscall.ENOTSUP: "EOPNOTSUPP", syscall.ETIMEDOUT: "ETIMEDOUT",
	}
	if n, ok := names[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}
