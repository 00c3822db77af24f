package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd trash mv|ls|rm|restore|purge`.

func init() {
	trash := &cobra.Command{Use: "trash", Short: "Manage the pool's image trash"}
	rbdCmd.AddCommand(trash)

	var expires time.Duration
	mv := &cobra.Command{
		Use: "mv [POOL/]IMAGE", Aliases: []string{"move"}, Short: "Move an image to the trash", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], -1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = rbd.TrashMove(cmd.Context(), s.io, spec.Image, expires)
			return err
		},
	}
	mv.Flags().DurationVar(&expires, "delay", 0, "deferment before the image may be removed (a duration; rbd's --expires-at takes a date)")
	trash.AddCommand(mv)

	var format string
	ls := &cobra.Command{
		Use: "ls [POOL]", Aliases: []string{"list"}, Short: "List trashed images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pool := poolArg(args)
			s, err := openRBDPool(cmd, pool)
			if err != nil {
				return err
			}
			defer s.Close()
			m, err := rbd.TrashList(cmd.Context(), s.io)
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
		},
	}
	ls.Flags().StringVar(&format, "format", "plain", "plain or json")
	trash.AddCommand(ls)

	trash.AddCommand(&cobra.Command{
		Use: "rm [POOL/]IMAGE_ID", Aliases: []string{"remove"}, Short: "Delete a trashed image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], -1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			return rbd.TrashRemove(cmd.Context(), s.io, spec.Image)
		},
	})
	var newName string
	restore := &cobra.Command{
		Use: "restore [POOL/]IMAGE_ID", Short: "Restore a trashed image", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := parseImageSpec(args[0], -1)
			if err != nil {
				return err
			}
			s, err := openRBDPool(cmd, spec.Pool)
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = rbd.TrashRestore(cmd.Context(), s.io, spec.Image, newName)
			return err
		},
	}
	restore.Flags().StringVar(&newName, "image", "", "restore under this name (default: the name it had)")
	trash.AddCommand(restore)

	purge := &cobra.Command{
		Use: "purge [POOL]", Short: "Remove the trashed images whose deferment has ended", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openRBDPool(cmd, poolArg(args))
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = rbd.TrashPurge(cmd.Context(), s.io, time.Now())
			return err
		},
	}
	purge.Flags().Bool("no-progress", false, "accepted for rbd compatibility")
	trash.AddCommand(purge)
}
