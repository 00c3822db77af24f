package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd rename|mv [POOL/]SRC [POOL/]DST`: rbd.Rename, within one
// pool, as rbd allows.

func init() {
	rbdCmd.AddCommand(&cobra.Command{
		Use: "rename [POOL/]SRC [POOL/]DST", Aliases: []string{"mv"}, Short: "Rename an image", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := parseImageSpec(args[0], -1)
			if err != nil {
				return err
			}
			dst, err := parseImageSpec(args[1], -1)
			if err != nil {
				return err
			}
			if src.Pool != dst.Pool {
				return errors.New("mv/rename across pools not supported")
			}
			s, err := openRBDPool(cmd, src.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			return rbd.Rename(cmd.Context(), s.io, src.Image, dst.Image)
		},
	})
}
