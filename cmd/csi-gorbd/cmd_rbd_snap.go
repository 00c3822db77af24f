package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd snap create|ls|rm` (rollback, protect and unprotect are
// not in package rbd yet).

// rbdTimestamp prints times like rbd (ctime(3) without the newline).
const rbdTimestamp = "Mon Jan _2 15:04:05 2006"

type rbdSnapJSON struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	Protected string `json:"protected"`
	Timestamp string `json:"timestamp"`
}

func init() {
	snap := &cobra.Command{Use: "snap", Short: "Manage image snapshots"}
	rbdCmd.AddCommand(snap)

	snap.AddCommand(&cobra.Command{
		Use: "create [POOL/]IMAGE@SNAP", Aliases: []string{"add"}, Short: "Create a snapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withImage(cmd, args[0], 1, nil, func(ctx context.Context, spec imageSpec, img *rbd.Image) error {
				_, err := img.CreateSnapshot(ctx, spec.Snap)
				return err
			})
		},
	})

	snap.AddCommand(&cobra.Command{
		Use: "rm [POOL/]IMAGE@SNAP", Aliases: []string{"remove"}, Short: "Delete a snapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withImage(cmd, args[0], 1, nil, func(ctx context.Context, spec imageSpec, img *rbd.Image) error {
				return img.RemoveSnapshot(ctx, spec.Snap)
			})
		},
	})

	var format string
	ls := &cobra.Command{
		Use: "ls [POOL/]IMAGE", Aliases: []string{"list"}, Short: "List snapshots", Args: cobra.ExactArgs(1),
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
			ctx := cmd.Context()
			img, err := rbd.Open(ctx, s.io, spec.Image, &rbd.OpenOptions{ReadOnly: true})
			if err != nil {
				return err
			}
			defer img.Close(ctx)
			out := []rbdSnapJSON{}
			for _, sn := range img.Stat().Snapshots {
				// Protection status is not exposed by package rbd; clone
				// v2 needs none, so it is reported as unprotected.
				out = append(out, rbdSnapJSON{ID: sn.ID, Name: sn.Name, Size: sn.Size, Protected: "false",
					Timestamp: sn.Timestamp.Local().Format(rbdTimestamp)})
			}
			sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), out)
			}
			if len(out) == 0 {
				return nil
			}
			// rbd's TextTable: SNAPID right-aligned, the rest left.
			rows := [][]string{{"SNAPID", "NAME", "SIZE", "PROTECTED", "TIMESTAMP"}}
			for _, sn := range out {
				rows = append(rows, []string{strconv.FormatUint(sn.ID, 10), sn.Name, bytesIEC(sn.Size), "", sn.Timestamp})
			}
			width := make([]int, len(rows[0]))
			for _, r := range rows {
				for i, c := range r {
					width[i] = max(width[i], len(c))
				}
			}
			w := cmd.OutOrStdout()
			for _, r := range rows {
				fmt.Fprintf(w, "%*s", width[0], r[0])
				for i := 1; i < len(r); i++ {
					fmt.Fprintf(w, "  %-*s", width[i], r[i])
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	ls.Flags().StringVar(&format, "format", "plain", "plain or json")
	snap.AddCommand(ls)

	for _, name := range []string{"rollback", "protect", "unprotect", "purge", "rename"} {
		name := name
		snap.AddCommand(&cobra.Command{
			Use: name + " [POOL/]IMAGE@SNAP", Short: "Not supported yet", Args: cobra.ArbitraryArgs,
			RunE: func(*cobra.Command, []string) error { return errNotSupported("snap " + name) },
		})
	}
}
