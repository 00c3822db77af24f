package main

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd image-meta list|get|set|remove`: the image's metadata
// (rbd.Image.Metadata and friends), printed as rbd prints it.

func (r *rbdCLI) imageMetaCmd() *cobra.Command {
	meta := &cobra.Command{Use: "image-meta", Short: "Manage image metadata"}

	var format string
	ls := &cobra.Command{
		Use: "list [POOL/]IMAGE", Aliases: []string{"ls"}, Short: "List image metadata", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openRead, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				m, err := img.Metadata(ctx)
				if err != nil {
					return err
				}
				kv := make(map[string]string, len(m))
				keys := make([]string, 0, len(m))
				for k, v := range m {
					kv[k] = string(v)
					keys = append(keys, k)
				}
				sort.Strings(keys)
				w := cmd.OutOrStdout()
				if format == "json" {
					return writeJSON(w, kv)
				}
				if len(keys) == 0 {
					return nil
				}
				if len(keys) == 1 {
					fmt.Fprintf(w, "There is 1 metadatum on this image:\n\n")
				} else {
					fmt.Fprintf(w, "There are %d metadata on this image:\n\n", len(keys))
				}
				rows := [][]string{{"Key", "Value"}}
				for _, k := range keys {
					rows = append(rows, []string{k, kv[k]})
				}
				printTable(w, rows, false)
				return nil
			})
		},
	}
	formatFlag(ls, &format)
	meta.AddCommand(ls)

	meta.AddCommand(&cobra.Command{
		Use: "get [POOL/]IMAGE KEY", Short: "Print one metadata value", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openRead, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				v, err := img.GetMetadata(ctx, args[1])
				if err != nil {
					return fmt.Errorf("failed to get metadata %s of image : %w", args[1], err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(v))
				return nil
			})
		},
	})
	meta.AddCommand(&cobra.Command{
		Use: "set [POOL/]IMAGE KEY VALUE", Short: "Set one metadata value", Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openWrite, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				return img.SetMetadata(ctx, args[1], []byte(args[2]))
			})
		},
	})
	meta.AddCommand(&cobra.Command{
		Use: "remove [POOL/]IMAGE KEY", Aliases: []string{"rm"}, Short: "Remove one metadata key", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openWrite, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				return img.RemoveMetadata(ctx, args[1])
			})
		},
	})
	return meta
}
