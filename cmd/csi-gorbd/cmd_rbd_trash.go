package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd trash mv|ls|rm|restore|purge`.

func (r *rbdCLI) trashCmd() *cobra.Command {
	trash := &cobra.Command{Use: "trash", Short: "Manage the pool's image trash"}

	var expires time.Duration
	mv := &cobra.Command{
		Use: "mv [POOL/]IMAGE", Aliases: []string{"move"}, Short: "Move an image to the trash", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withSpec(cmd, args[0], snapForbidden, func(ctx context.Context, s *rbdSession, spec imageSpec) error {
				_, err := rbd.TrashMove(ctx, s.io, spec.Image, expires)
				return err
			})
		},
	}
	mv.Flags().DurationVar(&expires, "delay", 0, "deferment before the image may be removed (a duration; rbd's --expires-at takes a date)")

	var newName string
	restore := &cobra.Command{
		Use: "restore [POOL/]IMAGE_ID", Short: "Restore a trashed image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withSpec(cmd, args[0], snapForbidden, func(ctx context.Context, s *rbdSession, spec imageSpec) error {
				_, err := rbd.TrashRestore(ctx, s.io, spec.Image, newName)
				return err
			})
		},
	}
	restore.Flags().StringVar(&newName, "image", "", "restore under this name (default: the name it had)")

	purge := &cobra.Command{
		Use: "purge [POOL]", Short: "Remove the trashed images whose deferment has ended", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withPool(cmd, r.poolArg(args), func(ctx context.Context, s *rbdSession) error {
				_, err := rbd.TrashPurge(ctx, s.io, time.Now())
				return err
			})
		},
	}
	purge.Flags().Bool("no-progress", false, "accepted for rbd compatibility")

	trash.AddCommand(mv, r.trashListCmd(), &cobra.Command{
		Use: "rm [POOL/]IMAGE_ID", Aliases: []string{"remove"}, Short: "Delete a trashed image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withSpec(cmd, args[0], snapForbidden, func(ctx context.Context, s *rbdSession, spec imageSpec) error {
				return rbd.TrashRemove(ctx, s.io, spec.Image)
			})
		},
	}, restore, purge)
	return trash
}

func (r *rbdCLI) trashListCmd() *cobra.Command {
	var format string
	ls := &cobra.Command{
		Use: "ls [POOL]", Aliases: []string{"list"}, Short: "List trashed images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withPool(cmd, r.poolArg(args), func(ctx context.Context, s *rbdSession) error {
				m, err := rbd.TrashList(ctx, s.io)
				if err != nil {
					return err
				}
				type entry struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				}
				out := []entry{}
				for id, t := range m {
					out = append(out, entry{ID: id, Name: t.Name})
				}
				sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				for _, e := range out {
					fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", e.ID, e.Name)
				}
				return nil
			})
		},
	}
	formatFlag(ls, &format)
	return ls
}
