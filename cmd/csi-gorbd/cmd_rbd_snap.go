package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// `csi-gorbd rbd snap create|ls|rm|protect|unprotect|rollback` (purge
// and rename are not supported yet).

// rbdTimestamp prints times like rbd (ctime(3) without the newline).
const rbdTimestamp = "Mon Jan _2 15:04:05 2006"

type rbdSnapJSON struct {
	ID        uint64         `json:"id"`
	Name      string         `json:"name"`
	Size      uint64         `json:"size"`
	Protected string         `json:"protected"`
	Timestamp string         `json:"timestamp"`
	Namespace *rbdSnapNSJSON `json:"namespace,omitempty"`
}

// rbdSnapNSJSON is the namespace object `rbd snap ls --all --format json`
// adds.
type rbdSnapNSJSON struct {
	Type         string `json:"type"`
	OriginalName string `json:"original_name,omitempty"`
}

func (r *rbdCLI) snapCmd() *cobra.Command {
	snap := &cobra.Command{Use: "snap", Short: "Manage image snapshots"}
	snap.AddCommand(&cobra.Command{
		Use: "create [POOL/]IMAGE@SNAP", Aliases: []string{"add"}, Short: "Create a snapshot", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapRequired, openWrite, func(ctx context.Context, _ *rbdSession, spec imageSpec, img *rbd.Image) error {
				_, err := img.CreateSnapshot(ctx, spec.Snap)
				return err
			})
		},
	}, r.snapListCmd())

	for _, c := range []struct {
		name, short string
		aliases     []string
		fn          func(*rbd.Image, context.Context, string) error
	}{
		{"rm", "Delete a snapshot", []string{"remove"}, (*rbd.Image).RemoveSnapshot},
		{"protect", "Prevent a snapshot from being deleted", nil, (*rbd.Image).ProtectSnapshot},
		{"unprotect", "Allow a snapshot to be deleted", nil, (*rbd.Image).UnprotectSnapshot},
		{"rollback", "Roll the image back to a snapshot", nil, (*rbd.Image).RollbackSnapshot},
	} {
		sub := &cobra.Command{
			Use: c.name + " [POOL/]IMAGE@SNAP", Aliases: c.aliases, Short: c.short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return r.withImage(cmd, args[0], snapRequired, openWrite, func(ctx context.Context, _ *rbdSession, spec imageSpec, img *rbd.Image) error {
					return c.fn(img, ctx, spec.Snap)
				})
			},
		}
		if c.name != "rm" {
			sub.Flags().Bool("no-progress", false, "accepted for rbd compatibility (no progress is shown)")
		}
		snap.AddCommand(sub)
	}

	for _, name := range []string{"purge", "rename"} {
		snap.AddCommand(&cobra.Command{
			Use: name + " [POOL/]IMAGE@SNAP", Short: "Not supported yet", Args: cobra.ArbitraryArgs,
			RunE: func(*cobra.Command, []string) error { return errNotSupported("snap " + name) },
		})
	}
	return snap
}

func (r *rbdCLI) snapListCmd() *cobra.Command {
	var format string
	var all bool
	ls := &cobra.Command{
		Use: "ls [POOL/]IMAGE", Aliases: []string{"list"}, Short: "List snapshots", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.withImage(cmd, args[0], snapForbidden, openRead, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				out := listSnapshots(ctx, img, all)
				if format == "json" {
					return writeJSON(cmd.OutOrStdout(), out)
				}
				printSnapshots(cmd.OutOrStdout(), out, all)
				return nil
			})
		},
	}
	formatFlag(ls, &format)
	ls.Flags().BoolVarP(&all, "all", "a", false, "list snapshots from all namespaces")
	return ls
}

// listSnapshots returns img's snapshots by id as `rbd snap ls` shows them:
// the user namespace's, or with all every namespace's.
func listSnapshots(ctx context.Context, img *rbd.Image, all bool) []rbdSnapJSON {
	out := []rbdSnapJSON{}
	for _, sn := range img.Stat().Snapshots {
		j := rbdSnapJSON{ID: sn.ID, Name: sn.Name, Size: sn.Size, Protected: "false",
			Timestamp: sn.Timestamp.Local().Format(rbdTimestamp)}
		if sn.Namespace.Type != rbd.SnapNamespaceUser && !all {
			continue
		}
		if sn.Namespace.Type == rbd.SnapNamespaceUser {
			if ps, err := img.ProtectionStatus(ctx, sn.Name); err == nil && ps == rbd.ProtectionProtected {
				j.Protected = "true"
			}
		}
		if all {
			j.Namespace = &rbdSnapNSJSON{Type: sn.Namespace.Type.String()}
			if sn.Namespace.Type == rbd.SnapNamespaceTrash {
				j.Namespace.OriginalName = sn.Namespace.OriginalName
			}
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func printSnapshots(w io.Writer, out []rbdSnapJSON, all bool) {
	if len(out) == 0 {
		return
	}
	head := []string{"SNAPID", "NAME", "SIZE", "PROTECTED", "TIMESTAMP"}
	if all {
		head = append(head, "NAMESPACE")
	}
	rows := [][]string{head}
	for _, sn := range out {
		prot := ""
		if sn.Protected == "true" {
			prot = "yes"
		}
		r := []string{strconv.FormatUint(sn.ID, 10), sn.Name, bytesIEC(sn.Size), prot, sn.Timestamp}
		if ns := sn.Namespace; ns != nil {
			if ns.Type == "trash" {
				r = append(r, "trash ("+ns.OriginalName+")")
			} else {
				r = append(r, ns.Type)
			}
		}
		rows = append(rows, r)
	}
	printTable(w, rows, true)
}

// printTable prints rows like rbd's TextTable: two spaces between
// columns, every column padded; the first right-aligned if rightFirst.
func printTable(w io.Writer, rows [][]string, rightFirst bool) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	for _, r := range rows {
		if rightFirst {
			fmt.Fprintf(w, "%*s", width[0], r[0])
		} else {
			fmt.Fprintf(w, "%-*s", width[0], r[0])
		}
		for i := 1; i < len(r); i++ {
			fmt.Fprintf(w, "  %-*s", width[i], r[i])
		}
		fmt.Fprintln(w)
	}
}
