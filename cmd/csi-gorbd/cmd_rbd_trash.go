package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd trash mv|ls|rm` (restore is not in package rbd yet).

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
	for _, name := range []string{"restore", "purge"} {
		name := name
		trash.AddCommand(&cobra.Command{
			Use: name, Short: "Not supported yet", Args: cobra.ArbitraryArgs,
			RunE: func(*cobra.Command, []string) error { return errNotSupported("trash " + name) },
		})
	}
}
