package rbd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Interop tests of rename, image metadata, protection, rollback, clone v1,
// the snapshot trash namespace, trash restore/purge, snapshot opens and
// header refresh, against each release's rbd CLI.

// rbdFails runs the rbd CLI and returns its stderr, failing the test if it
// succeeds.
func (e *env) rbdFails(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "-p", e.pool}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	out, err := execCombined(full)
	if err == nil {
		t.Fatalf("rbd %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

type cliSnap struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	Protected string `json:"protected"`
	Namespace struct {
		Type         string `json:"type"`
		OriginalName string `json:"original_name"`
	} `json:"namespace"`
}

func (e *env) snaps(t *testing.T, image string, all bool) []cliSnap {
	t.Helper()
	args := []string{"snap", "ls", "--format", "json", image}
	if all {
		args = append(args, "--all")
	}
	var s []cliSnap
	if err := json.Unmarshal(e.rbd(t, args...), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// Rename and metadata: ours seen by rbd, rbd's seen by us; existing and
// missing names give typed errors.
func TestInteropRenameMetadata(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a, b, other := iname("rena"), iname("renb"), iname("reno")
			if _, err := rbd.Create(ctx, e.io, a, 4<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			e.rbd(t, "create", "--size", "1", other)
			t.Cleanup(func() {
				for _, n := range []string{a, b, other} {
					_ = rbd.Remove(context.Background(), e.io, n)
				}
			})
			img, err := rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			data := randBytes(1<<20, 51)
			if _, err := img.WriteAt(ctx, data, 3<<20); err != nil {
				t.Fatal(err)
			}
			if err := img.SetMetadata(ctx, "owner", []byte("engineer-e")); err != nil {
				t.Fatal(err)
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := rbd.Rename(ctx, e.io, a, b); err != nil {
				t.Fatal(err)
			}
			if err := rbd.Rename(ctx, e.io, b, other); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("rename onto an existing image: %v, want ErrExists", err)
			}
			if err := rbd.Rename(ctx, e.io, a, b+"x"); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("rename of a missing image: %v, want ErrNotFound", err)
			}
			ls := string(e.rbd(t, "ls"))
			if strings.Contains(ls, a+"\n") || !strings.Contains(ls, b+"\n") {
				t.Fatalf("rbd ls after rename:\n%s", ls)
			}
			if got := strings.TrimSpace(string(e.rbd(t, "image-meta", "get", b, "owner"))); got != "engineer-e" {
				t.Fatalf("rbd image-meta get = %q", got)
			}
			if exp := e.export(t, b); !bytes.Equal(exp[3<<20:], data) {
				t.Fatal("rbd export after rename differs")
			}
			// rbd's rename and metadata, seen by us.
			e.rbd(t, "rename", b, a)
			e.rbd(t, "image-meta", "set", a, "conf_rbd_cache", "false")
			e.rbd(t, "image-meta", "set", a, "theirs", "v")
			img, err = rbd.Open(ctx, e.io, a, &rbd.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			m, err := img.Metadata(ctx)
			if err != nil || string(m["owner"]) != "engineer-e" || string(m["theirs"]) != "v" || string(m["conf_rbd_cache"]) != "false" || len(m) != 3 {
				t.Fatalf("Metadata = %q, %v", m, err)
			}
			if v, err := img.GetMetadata(ctx, "theirs"); err != nil || string(v) != "v" {
				t.Fatalf("GetMetadata = %q, %v", v, err)
			}
			if _, err := img.GetMetadata(ctx, "nope"); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("GetMetadata of a missing key: %v", err)
			}
			if err := img.SetMetadata(ctx, "x", nil); !errors.Is(err, rbd.ErrReadOnly) {
				t.Fatalf("SetMetadata read-only: %v", err)
			}
			img.Close(ctx)
			img, err = rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			if err := img.RemoveMetadata(ctx, "theirs"); err != nil {
				t.Fatal(err)
			}
			if err := img.RemoveMetadata(ctx, "theirs"); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("second RemoveMetadata: %v", err)
			}
			img.Close(ctx)
			if out := string(e.rbd(t, "image-meta", "list", a)); strings.Contains(out, "theirs") || !strings.Contains(out, "owner") {
				t.Fatalf("rbd image-meta list:\n%s", out)
			}
		})
	}
}

// Protection and clone v1: our protect is honoured by rbd (snap rm
// refused, rbd clone v1 allowed); our unprotect refuses while a clone
// exists; our clone v1 is listed by `rbd children` and reads through.
// Rollback: our rollback of an rbd-written image matches the snapshot.
func TestInteropProtectCloneV1Rollback(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const size = 8<<20 + 4096
			orig := randBytes(size, 61)
			parent := iname("prot")
			theirChild, ourChild := parent+"-tc", parent+"-oc"
			e.importFile(t, orig, parent)
			t.Cleanup(func() {
				bg := context.Background()
				_ = rbd.Remove(bg, e.io, ourChild)
				_ = rbd.Remove(bg, e.io, theirChild)
				e.rbdQuiet("snap", "unprotect", parent+"@s1")
				e.rbdQuiet("snap", "purge", "--no-progress", parent)
				_ = rbd.Remove(bg, e.io, parent)
			})
			protectV1(t, ctx, e, parent, ourChild)
			cloneV1(t, ctx, e, orig, parent, theirChild, ourChild)
			// Rollback: rbd overwrites and grows the image, we roll back.
			rollbackAfterRBD(t, ctx, e, orig, parent)
		})
	}
}

// protectV1: clone v1 needs a protected snapshot; protect twice is
// ErrBusy, rbd sees it protected, and a protected snapshot stays.
func protectV1(t *testing.T, ctx context.Context, e *env, parent, ourChild string) {
	img, err := rbd.Open(ctx, e.io, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := img.CreateSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rbd.Clone(ctx, e.io, parent, "s1", e.io, ourChild, &rbd.CreateOptions{CloneFormat: rbd.CloneFormatV1}); !errors.Is(err, rbd.ErrInvalid) {
		t.Fatalf("clone v1 of an unprotected snapshot: %v, want ErrInvalid", err)
	}
	if err := img.ProtectSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := img.ProtectSnapshot(ctx, "s1"); !errors.Is(err, rbd.ErrBusy) {
		t.Fatalf("second protect: %v, want ErrBusy", err)
	}
	if s := e.snaps(t, parent, false); len(s) != 1 || s[0].Protected != "true" {
		t.Fatalf("rbd snap ls after our protect: %+v", s)
	}
	if err := img.RemoveSnapshot(ctx, "s1"); !errors.Is(err, rbd.ErrBusy) {
		t.Fatalf("RemoveSnapshot of a protected snapshot: %v", err)
	}
	if err := img.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// cloneV1: rbd's and our v1 clones of our protected snapshot are listed,
// read through, keep their writes, and keep it protected until flattened
// or removed.
func cloneV1(t *testing.T, ctx context.Context, e *env, orig []byte, parent, theirChild, ourChild string) {
	size := len(orig)
	e.rbdFails(t, "snap", "rm", "--no-progress", parent+"@s1")
	e.rbd(t, "clone", "--rbd-default-clone-format", "1", parent+"@s1", theirChild)
	if _, err := rbd.Clone(ctx, e.io, parent, "s1", e.io, ourChild, &rbd.CreateOptions{CloneFormat: rbd.CloneFormatAuto}); err != nil {
		t.Fatal(err)
	}
	var info struct {
		OpFeatures []string `json:"op_features"`
		Parent     struct {
			Image    string `json:"image"`
			Snapshot string `json:"snapshot"`
		} `json:"parent"`
	}
	if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", ourChild), &info); err != nil {
		t.Fatal(err)
	}
	// The clusters admit pre-Mimic clients (luminous), so "auto" is v1.
	if info.Parent.Image != parent || info.Parent.Snapshot != "s1" || slices.Contains(info.OpFeatures, "clone-child") {
		t.Fatalf("rbd info of our auto (v1) clone: %+v", info)
	}
	ch := string(e.rbd(t, "children", parent+"@s1"))
	if !strings.Contains(ch, ourChild) || !strings.Contains(ch, theirChild) {
		t.Fatalf("rbd children:\n%s", ch)
	}
	img, err := rbd.Open(ctx, e.io, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.UnprotectSnapshot(ctx, "s1"); !errors.Is(err, rbd.ErrBusy) {
		t.Fatalf("unprotect with clones: %v, want ErrBusy", err)
	}
	if s := e.snaps(t, parent, false); len(s) != 1 || s[0].Protected != "true" {
		t.Fatalf("rbd snap ls after the refused unprotect: %+v", s)
	}
	// Both clones read the parent; our write to ours stays ours.
	for _, n := range []string{ourChild, theirChild} {
		ci, err := rbd.Open(ctx, e.io, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, size)
		if _, err := ci.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, orig) {
			t.Fatalf("%s reads differ from the parent (%v)", n, err)
		}
		if _, err := ci.WriteAt(ctx, []byte("child"), 5<<20); err != nil {
			t.Fatal(err)
		}
		ci.Close(ctx)
	}
	want := slices.Clone(orig)
	copy(want[5<<20:], "child")
	if exp := e.export(t, ourChild); !bytes.Equal(exp, want) {
		t.Fatal("rbd export of our v1 clone differs")
	}
	// Flatten theirs, remove ours: then unprotect succeeds.
	ti, err := rbd.Open(ctx, e.io, theirChild, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ti.Flatten(ctx); err != nil {
		t.Fatal(err)
	}
	ti.Close(ctx)
	if err := rbd.Remove(ctx, e.io, ourChild); err != nil {
		t.Fatal(err)
	}
	if ch := strings.TrimSpace(string(e.rbd(t, "children", parent+"@s1"))); ch != "" {
		t.Fatalf("rbd children after flatten and remove: %q", ch)
	}
	if exp := e.export(t, theirChild); !bytes.Equal(exp, want) {
		t.Fatal("rbd export of the flattened v1 clone differs")
	}
	if err := img.UnprotectSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if s := e.snaps(t, parent, false); len(s) != 1 || s[0].Protected != "false" {
		t.Fatalf("rbd snap ls after unprotect: %+v", s)
	}

	img.Close(ctx)
}

// rollbackAfterRBD: rbd overwrites and grows the image, we roll it back
// to the snapshot, and rbd sees the snapshot's data and a valid object map.
func rollbackAfterRBD(t *testing.T, ctx context.Context, e *env, orig []byte, parent string) {
	size := uint64(len(orig))
	e.rbd(t, "bench", "--io-type", "write", "--io-size", "65536", "--io-total", "1M", "--io-pattern", "rand", parent)
	e.rbd(t, "resize", "--size", "12", parent)
	img, err := rbd.Open(ctx, e.io, parent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.RollbackSnapshot(ctx, "nope"); !errors.Is(err, rbd.ErrNotFound) {
		t.Fatalf("rollback to a missing snapshot: %v", err)
	}
	if err := img.RollbackSnapshot(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if img.Size() != size {
		t.Fatalf("size after rollback %d, want %d", img.Size(), size)
	}
	if err := img.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if exp := e.export(t, parent); !bytes.Equal(exp, orig) {
		t.Fatal("rbd export after our rollback differs from the snapshot")
	}
	e.rbd(t, "object-map", "check", "--no-progress", parent)
	if out := string(e.rbd(t, "info", parent)); strings.Contains(out, "invalid") {
		t.Fatalf("object map invalid after rollback:\n%s", out)
	}
}

// Snapshot removal with clone v2 children moves the snapshot to the trash
// namespace (rbd snap ls --all agrees); the last child's removal deletes
// it. The same for an rbd-made v2 clone whose parent snapshot rbd
// trashed.
func TestInteropSnapshotTrash(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			parent := iname("strash")
			c1, c2 := parent+"-c1", parent+"-c2"
			e.importFile(t, randBytes(2<<20, 71), parent)
			t.Cleanup(func() {
				bg := context.Background()
				_ = rbd.Remove(bg, e.io, c1)
				_ = rbd.Remove(bg, e.io, c2)
				e.rbdQuiet("snap", "purge", "--no-progress", parent)
				e.rbdQuiet("rm", "--no-progress", parent)
			})
			img, err := rbd.Open(ctx, e.io, parent, nil)
			if err != nil {
				t.Fatal(err)
			}
			id, err := img.CreateSnapshot(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rbd.Clone(ctx, e.io, parent, "s1", e.io, c1, nil); err != nil {
				t.Fatal(err)
			}
			if err := img.RemoveSnapshot(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if s := e.snaps(t, parent, false); len(s) != 0 {
				t.Fatalf("rbd snap ls still lists the trashed snapshot: %+v", s)
			}
			all := e.snaps(t, parent, true)
			if len(all) != 1 || all[0].ID != id || all[0].Namespace.Type != "trash" || all[0].Namespace.OriginalName != "s1" {
				t.Fatalf("rbd snap ls --all: %+v", all)
			}
			st := img.Stat()
			if len(st.Snapshots) != 1 || st.Snapshots[0].Namespace.Type != rbd.SnapNamespaceTrash || st.Snapshots[0].Namespace.OriginalName != "s1" {
				t.Fatalf("our snapshots: %+v", st.Snapshots)
			}
			// The name is free again; the clone still reads the old data.
			if _, err := img.CreateSnapshot(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if err := img.RemoveSnapshot(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := rbd.Remove(ctx, e.io, c1); err != nil {
				t.Fatal(err)
			}
			if all := e.snaps(t, parent, true); len(all) != 0 {
				t.Fatalf("trashed snapshot left after its last child went: %+v", all)
			}

			// rbd's clone v2 and rbd's snap rm: the trash snapshot goes
			// when we remove the child.
			e.rbd(t, "snap", "create", parent+"@s2")
			e.rbd(t, "clone", "--rbd-default-clone-format", "2", parent+"@s2", c2)
			e.rbd(t, "snap", "rm", "--no-progress", parent+"@s2")
			if all := e.snaps(t, parent, true); len(all) != 1 || all[0].Namespace.Type != "trash" {
				t.Fatalf("rbd snap ls --all after rbd's snap rm: %+v", all)
			}
			if err := rbd.Remove(ctx, e.io, c2); err != nil {
				t.Fatal(err)
			}
			if all := e.snaps(t, parent, true); len(all) != 0 {
				t.Fatalf("rbd's trashed snapshot left after our child removal: %+v", all)
			}
		})
	}
}

// Trash restore and purge both ways.
func TestInteropTrashRestorePurge(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a, b := iname("tra"), iname("trb")
			data := randBytes(1<<20, 81)
			e.importFile(t, data, a)
			e.importFile(t, data, b)
			t.Cleanup(func() {
				for _, n := range []string{a, b, a + "-r"} {
					e.rbdQuiet("rm", "--no-progress", n)
				}
			})
			ida, err := rbd.TrashMove(ctx, e.io, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			e.rbd(t, "trash", "restore", ida)
			if exp := e.export(t, a); !bytes.Equal(exp, data) {
				t.Fatal("rbd trash restore of our trash entry: data differs")
			}
			e.rbd(t, "trash", "mv", a)
			e.rbd(t, "create", "--size", "1", a+"-r")
			if _, err := rbd.TrashRestore(ctx, e.io, ida, a+"-r"); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("restore onto an existing name: %v, want ErrExists", err)
			}
			if _, err := rbd.TrashRestore(ctx, e.io, "nosuchid", ""); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("restore of a missing entry: %v, want ErrNotFound", err)
			}
			if name, err := rbd.TrashRestore(ctx, e.io, ida, ""); err != nil || name != a {
				t.Fatalf("TrashRestore = %q, %v", name, err)
			}
			if out := string(e.rbd(t, "trash", "ls")); strings.Contains(out, ida) {
				t.Fatalf("still in the trash after our restore:\n%s", out)
			}
			if exp := e.export(t, a); !bytes.Equal(exp, data) {
				t.Fatal("rbd export after our restore differs")
			}
			// Purge removes expired entries only.
			idb, err := rbd.TrashMove(ctx, e.io, b, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			ida, err = rbd.TrashMove(ctx, e.io, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.TrashRemove(context.Background(), e.io, idb) })
			removed, err := rbd.TrashPurge(ctx, e.io, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(removed, ida) || slices.Contains(removed, idb) {
				t.Fatalf("TrashPurge removed %v (a %s, b %s)", removed, ida, idb)
			}
			out := string(e.rbd(t, "trash", "ls"))
			if strings.Contains(out, ida) || !strings.Contains(out, idb) {
				t.Fatalf("rbd trash ls after purge:\n%s", out)
			}
		})
	}
}

// An image opened at a snapshot is read-only and shows the snapshot; an
// open head sees `rbd resize` and `rbd snap create` by the CLI (header
// watch), and keeps taking writes with the new snap context while the CLI
// works through our lock.
func TestInteropSnapshotOpenAndRefresh(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("refr")
			const size = 8 << 20
			if _, err := rbd.Create(ctx, e.io, name, size, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				e.rbdQuiet("snap", "purge", "--no-progress", name)
				_ = rbd.Remove(context.Background(), e.io, name)
			})
			w, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			a := randBytes(size, 91)
			if _, err := w.WriteAt(ctx, a, 0); err != nil {
				t.Fatal(err)
			}
			if !w.OwnsLock() {
				t.Fatal("writer does not own the lock after a write")
			}
			ro, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close(context.Background())

			// rbd snap create and rbd resize while we hold the lock.
			e.rbd(t, "snap", "create", name+"@cli")
			e.rbd(t, "resize", "--size", "16", name)
			waitFor(t, ctx, "the writer to see the resize", func() bool { return w.Size() == 16<<20 })
			waitFor(t, ctx, "the reader to see the resize", func() bool { return ro.Size() == 16<<20 })
			b := randBytes(1<<20, 92)
			if _, err := w.WriteAt(ctx, b, 15<<20); err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteAt(ctx, b, 0); err != nil {
				t.Fatal(err)
			}
			if exp := e.export(t, name+"@cli"); !bytes.Equal(exp, a) {
				t.Fatal("rbd snapshot taken while we held the lock does not show the pre-snapshot data: our write missed the new snap context")
			}
			want := append(slices.Clone(a), make([]byte, 8<<20)...)
			copy(want, b)
			copy(want[15<<20:], b)
			got := make([]byte, len(want))
			if _, err := ro.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read-only head reads differ (%v)", err)
			}

			// Opening at a snapshot: its data, read-only, typed errors.
			si, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Snapshot: "cli"})
			if err != nil {
				t.Fatal(err)
			}
			defer si.Close(context.Background())
			if si.Size() != size {
				t.Fatalf("snapshot size %d", si.Size())
			}
			sgot := make([]byte, size)
			if _, err := si.ReadAt(ctx, sgot, 0); err != nil || !bytes.Equal(sgot, a) {
				t.Fatalf("snapshot reads differ (%v)", err)
			}
			if _, err := si.WriteAt(ctx, []byte("x"), 0); !errors.Is(err, rbd.ErrReadOnly) {
				t.Fatalf("write to a snapshot: %v, want ErrReadOnly", err)
			}
			if _, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Snapshot: "nope"}); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("open of a missing snapshot: %v, want ErrNotFound", err)
			}
		})
	}
}

// waitFor polls cond until it holds or ctx ends (a header refresh arrives
// by notify, asynchronously).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// Bad input gives typed errors: missing pool, image and snapshot are
// not-found, existing names exist.
func TestInteropBadInput(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			if _, err := e.conn.OpenIOContext(ctx, "gorbd-no-such-pool"); !errors.Is(err, syscall.ENOENT) || !errors.Is(err, rados.ErrPoolNotFound) {
				t.Fatalf("missing pool: %v", err)
			}
			name := iname("bad")
			if _, err := rbd.Open(ctx, e.io, name, nil); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("missing image: %v", err)
			}
			if err := rbd.Remove(ctx, e.io, name); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("remove of a missing image: %v", err)
			}
			if _, err := rbd.OpenByID(ctx, e.io, "feedfacefeed", nil); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("missing image id: %v", err)
			}
			if _, err := rbd.Create(ctx, e.io, name, 1<<20, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })
			if _, err := rbd.Create(ctx, e.io, name, 1<<20, nil); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("create of an existing name: %v", err)
			}
			if _, err := rbd.Clone(ctx, e.io, name, "nope", e.io, name+"-c", nil); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("clone of a missing snapshot: %v", err)
			}
			img, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			if _, err := img.CreateSnapshot(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("snap", "purge", "--no-progress", name) })
			if _, err := img.CreateSnapshot(ctx, "s"); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("existing snapshot: %v", err)
			}
			for what, err := range map[string]error{
				"remove": img.RemoveSnapshot(ctx, "nope"), "protect": img.ProtectSnapshot(ctx, "nope"),
				"unprotect": img.UnprotectSnapshot(ctx, "nope"), "rollback": img.RollbackSnapshot(ctx, "nope"),
			} {
				if !errors.Is(err, rbd.ErrNotFound) {
					t.Errorf("%s of a missing snapshot: %v", what, err)
				}
			}
			if err := img.UnprotectSnapshot(ctx, "s"); !errors.Is(err, rbd.ErrInvalid) {
				t.Errorf("unprotect of an unprotected snapshot: %v", err)
			}
			if _, err := rbd.Clone(ctx, e.io, name, "s", e.io, name, nil); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("clone onto an existing name: %v", err)
			}
			if err := rbd.Remove(ctx, e.io, name); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("remove of an open image with snapshots: %v", err)
			}
		})
	}
}

// rbdPool runs the rbd CLI on another pool than the env's.
func (e *env) rbdPool(t *testing.T, pool string, args ...string) []byte {
	t.Helper()
	o := *e
	o.pool = pool
	return o.rbd(t, args...)
}

func execCombined(full []string) ([]byte, error) {
	return exec.Command(full[0], full[1:]...).CombinedOutput()
}

// A pool over its quota: Create fails with ENOSPC and leaves nothing
// behind (no rbd_id object, no directory entry), and writes to an
// existing image fail with ENOSPC. The pool is our own, with a quota, in
// the shared cluster; it is deleted afterwards.
func TestInteropFullPool(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			pool := iname("quota")
			mon := func(cmd string) {
				t.Helper()
				if _, status, err := e.conn.MonCommand(ctx, cmd, nil); err != nil {
					t.Fatalf("%s: %v %s", cmd, err, status)
				}
			}
			mon(`{"prefix":"osd pool create","pool":"` + pool + `","pg_num":8,"pgp_num":8}`)
			t.Cleanup(func() {
				_, _, _ = e.conn.MonCommand(context.Background(), `{"prefix":"osd pool delete","pool":"`+pool+`","pool2":"`+pool+
					`","yes_i_really_really_mean_it":true}`, nil)
			})
			if err := e.conn.WaitForLatestOSDMap(ctx); err != nil {
				t.Fatal(err)
			}
			io, err := e.conn.OpenIOContext(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rbd.Create(ctx, io, "before", 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			img, err := rbd.Open(ctx, io, "before", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			if _, err := img.WriteAt(ctx, []byte("before the quota"), 0); err != nil {
				t.Fatal(err)
			}
			mon(`{"prefix":"osd pool set-quota","pool":"` + pool + `","field":"max_objects","val":"8"}`)
			// Fill up to the quota; the monitors flag the pool full once
			// the OSDs' stats report it.
			for i := 0; ; i++ {
				err := io.WriteFull(ctx, fmt.Sprintf("filler.%d", i), []byte("x"))
				if errors.Is(err, syscall.ENOSPC) {
					break
				}
				if err != nil {
					t.Fatalf("filling the pool: %v", err)
				}
				if i > 8 {
					waitFor(t, ctx, "the quota to be enforced", func() bool {
						err := io.WriteFull(ctx, "filler.probe", []byte("x"))
						return errors.Is(err, syscall.ENOSPC)
					})
					break
				}
			}
			_, err = rbd.Create(ctx, io, "after", 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault})
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, rados.ErrPoolFull) {
				t.Fatalf("create in a full pool: %v, want ENOSPC", err)
			}
			if _, err := io.Stat(ctx, rbd.IDObjectName("after")); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("rbd_id.after after the failed create: %v", err)
			}
			if _, err := rbd.Open(ctx, io, "after", &rbd.OpenOptions{ReadOnly: true}); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("open of the failed image: %v", err)
			}
			if ls := string(e.rbdPool(t, pool, "ls")); strings.TrimSpace(ls) != "before" {
				t.Fatalf("rbd ls %s after the failed create: %q", pool, ls)
			}
			if _, err := img.WriteAt(ctx, randBytes(4096, 1), 4<<20); !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write to a new object in a full pool: %v, want ENOSPC", err)
			}
		})
	}
}
