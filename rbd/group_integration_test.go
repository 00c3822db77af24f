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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// rbdg runs the rbd CLI without -p (Tentacle's group commands refuse it;
// names are given as POOL/NAME).
func (e *env) rbdg(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := e.rbdgErr(args...)
	if err != nil {
		t.Fatalf("rbd %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (e *env) rbdgErr(args ...string) ([]byte, error) {
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring()}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.Join(err, errors.New(stderr.String()))
	}
	return out, nil
}

func (e *env) snapsAll(t *testing.T, image string) []cliSnap {
	t.Helper()
	var out []cliSnap
	if err := json.Unmarshal(e.rbdg(t, "snap", "ls", "--all", "--format", "json", e.pool+"/"+image), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) groupSnaps(t *testing.T, group string) map[string]string {
	t.Helper()
	var raw []map[string]any
	if err := json.Unmarshal(e.rbdg(t, "group", "snap", "ls", "--format", "json", e.pool+"/"+group), &raw); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range raw {
		name, _ := r["snapshot"].(string)
		if name == "" {
			name, _ = r["name"].(string) // Tentacle
		}
		state, _ := r["state"].(string)
		m[name] = state
	}
	return m
}

func (e *env) groupImageNames(t *testing.T, group string) []string {
	t.Helper()
	var raw []struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(e.rbdg(t, "group", "image", "list", "--format", "json", e.pool+"/"+group), &raw); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range raw {
		names = append(names, r.Image)
	}
	slices.Sort(names)
	return names
}

// Groups made by us, read by the rbd CLI: `rbd group ls`, `group image
// list`, `group snap ls` and `snap ls --all` (the members' group-namespace
// snapshots under librbd's names) agree; the CLI removes our group
// snapshot and our group. Then the other way: a group, its images and
// its snapshot made with the CLI are read by us and removed by us.
func TestInteropGroups(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a, b := iname("ga"), iname("gb")
			for _, n := range []string{a, b} {
				if _, err := rbd.Create(ctx, e.io, n, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { e.rbdQuiet("snap", "purge", n); e.rbdQuiet("rm", "--no-progress", n) })
			}
			g := iname("grp")
			gid, err := rbd.CreateGroup(ctx, e.io, g)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdgErr("group", "rm", e.pool+"/"+g) })
			if _, err := rbd.CreateGroup(ctx, e.io, g); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("second CreateGroup: %v, want ErrExists", err)
			}
			if !strings.Contains(string(e.rbdg(t, "group", "ls", e.pool)), g) {
				t.Fatalf("rbd group ls does not list %s", g)
			}
			for _, n := range []string{a, b} {
				if err := rbd.AddGroupImage(ctx, e.io, g, e.io, n); err != nil {
					t.Fatal(err)
				}
			}
			if err := rbd.AddGroupImage(ctx, e.io, g, e.io, a); err != nil {
				t.Fatalf("adding %s to its group again: %v", a, err)
			}
			other := iname("grp2")
			if _, err := rbd.CreateGroup(ctx, e.io, other); err != nil {
				t.Fatal(err)
			}
			if err := rbd.AddGroupImage(ctx, e.io, other, e.io, a); !errors.Is(err, rbd.ErrExists) {
				t.Fatalf("adding %s to a second group: %v, want ErrExists", a, err)
			}
			if err := rbd.RemoveGroup(ctx, e.io, other); err != nil {
				t.Fatal(err)
			}
			want := []string{a, b}
			slices.Sort(want)
			if got := e.groupImageNames(t, g); !slices.Equal(got, want) {
				t.Fatalf("rbd group image list = %v, want %v", got, want)
			}
			img, err := rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if gs, err := img.Group(ctx); err != nil || gs.GroupID != gid || gs.PoolID != e.io.PoolID() {
				t.Fatalf("Group() = %+v, %v; want %s in pool %d", gs, err, gid, e.io.PoolID())
			}
			if _, err := img.WriteAt(ctx, []byte("before the group snapshot"), 0); err != nil {
				t.Fatal(err)
			}
			gs, err := rbd.CreateGroupSnapshot(ctx, e.io, g, "gs1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := img.WriteAt(ctx, []byte("AFTER"), 0); err != nil {
				t.Fatal(err)
			}
			aID := img.Stat().ID
			img.Close(ctx)

			if gs.State != rbd.GroupSnapshotComplete || len(gs.Snaps) != 2 {
				t.Fatalf("group snapshot %+v", gs)
			}
			if got := e.groupSnaps(t, g); got["gs1"] != "ok" && got["gs1"] != "complete" {
				t.Fatalf("rbd group snap ls = %v, want gs1 complete", got)
			}
			snapName := rbd.GroupImageSnapName(e.io.PoolID(), gid, gs.ID)
			for _, n := range []string{a, b} {
				snaps := e.snapsAll(t, n)
				if len(snaps) != 1 || snaps[0].Name != snapName || snaps[0].Namespace.Type != "group" {
					t.Fatalf("rbd snap ls --all %s = %+v, want one group snapshot %s", n, snaps, snapName)
				}
			}
			// The member snapshot reads the data at the group snapshot.
			for _, m := range gs.Snaps {
				if m.ImageID != aID {
					continue
				}
				at, err := rbd.OpenByID(ctx, e.io, m.ImageID, &rbd.OpenOptions{SnapshotID: m.SnapID})
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 25)
				_, err = at.ReadAt(ctx, buf, 0)
				at.Close(ctx)
				if err != nil || string(buf) != "before the group snapshot" {
					t.Fatalf("member snapshot reads %q (%v)", buf, err)
				}
			}
			// Ours listed back.
			all, err := rbd.GroupSnapshots(ctx, e.io, g)
			if err != nil || len(all) != 1 || all[0].ID != gs.ID || all[0].Name != "gs1" || len(all[0].Snaps) != 2 {
				t.Fatalf("GroupSnapshots = %+v, %v", all, err)
			}
			e.rbdg(t, "group", "snap", "rm", e.pool+"/"+g+"@gs1")
			for _, n := range []string{a, b} {
				if snaps := e.snapsAll(t, n); len(snaps) != 0 {
					t.Fatalf("after rbd group snap rm, %s has %+v", n, snaps)
				}
			}
			if _, err := rbd.CreateGroupSnapshot(ctx, e.io, g, "gs2", nil); err != nil {
				t.Fatal(err)
			}
			e.rbdg(t, "group", "rm", e.pool+"/"+g)
			if gl, _ := rbd.ListGroups(ctx, e.io); gl[g] != "" {
				t.Fatalf("group %s still listed after rbd group rm", g)
			}
			for _, n := range []string{a, b} {
				if snaps := e.snapsAll(t, n); len(snaps) != 0 {
					t.Fatalf("after rbd group rm, %s has %+v", n, snaps)
				}
				i, err := rbd.Open(ctx, e.io, n, &rbd.OpenOptions{ReadOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				gs, err := i.Group(ctx)
				i.Close(ctx)
				if err != nil || gs.Valid() {
					t.Fatalf("%s still names group %+v (%v)", n, gs, err)
				}
			}

			// The other way.
			g2 := iname("cgrp")
			e.rbdg(t, "group", "create", e.pool+"/"+g2)
			t.Cleanup(func() { e.rbdgErr("group", "rm", e.pool+"/"+g2) })
			for _, n := range []string{a, b} {
				e.rbdg(t, "group", "image", "add", e.pool+"/"+g2, e.pool+"/"+n)
			}
			e.rbdg(t, "group", "snap", "create", e.pool+"/"+g2+"@cs1")
			imgs, err := rbd.GroupImages(ctx, e.io, g2)
			if err != nil || len(imgs) != 2 {
				t.Fatalf("GroupImages = %+v, %v", imgs, err)
			}
			for _, gi := range imgs {
				if gi.State != rbd.GroupImageAttached {
					t.Errorf("member %+v not attached", gi)
				}
			}
			all, err = rbd.GroupSnapshots(ctx, e.io, g2)
			if err != nil || len(all) != 1 || all[0].Name != "cs1" || all[0].State != rbd.GroupSnapshotComplete || len(all[0].Snaps) != 2 {
				t.Fatalf("GroupSnapshots of the CLI's group = %+v, %v", all, err)
			}
			gid2, _ := rbd.GroupID(ctx, e.io, g2)
			for _, s := range all[0].Snaps {
				snaps := e.snapsAll(t, nameOfID(t, e, s.ImageID))
				if len(snaps) != 1 || snaps[0].ID != s.SnapID || snaps[0].Name != rbd.GroupImageSnapName(e.io.PoolID(), gid2, all[0].ID) {
					t.Fatalf("member %s: CLI lists %+v, the record says snap %d", s.ImageID, snaps, s.SnapID)
				}
			}
			if err := rbd.RemoveGroupSnapshot(ctx, e.io, g2, "cs1"); err != nil {
				t.Fatal(err)
			}
			if got := e.groupSnaps(t, g2); len(got) != 0 {
				t.Fatalf("rbd group snap ls after our removal: %v", got)
			}
			if err := rbd.RemoveGroupImage(ctx, e.io, g2, e.io, a); err != nil {
				t.Fatal(err)
			}
			if got := e.groupImageNames(t, g2); !slices.Equal(got, []string{b}) {
				t.Fatalf("rbd group image list after our removal = %v, want [%s]", got, b)
			}
			e.rbdg(t, "group", "snap", "create", e.pool+"/"+g2+"@cs2")
			if err := rbd.RemoveGroup(ctx, e.io, g2); err != nil {
				t.Fatal(err)
			}
			if out := e.rbdg(t, "group", "ls", e.pool); strings.Contains(string(out), g2) {
				t.Fatalf("rbd group ls still lists %s", g2)
			}
			if snaps := e.snapsAll(t, b); len(snaps) != 0 {
				t.Fatalf("after RemoveGroup, %s has %+v", b, snaps)
			}
			if err := rbd.RemoveGroup(ctx, e.io, g2); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("RemoveGroup of a missing group: %v", err)
			}
		})
	}
}

func nameOfID(t *testing.T, e *env, id string) string {
	t.Helper()
	n, err := rbd.ImageName(tctx(t), e.io, id)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A member's snapshot of a group snapshot is a restore source: our clone
// of it (clone v2 by snapshot id) reads the member's data at the group
// snapshot with the CLI; removing the group snapshot moves that member
// snapshot to the trash namespace while the clone lives, and removing
// the clone removes it.
func TestInteropCloneGroupSnapshot(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a := iname("gca")
			if _, err := rbd.Create(ctx, e.io, a, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("snap", "purge", a); e.rbdQuiet("rm", "--no-progress", a) })
			data := randBytes(1<<20, 7)
			img, err := rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := img.WriteAt(ctx, data, 4096); err != nil {
				t.Fatal(err)
			}
			g := iname("gcg")
			if _, err := rbd.CreateGroup(ctx, e.io, g); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdgErr("group", "rm", e.pool+"/"+g) })
			if err := rbd.AddGroupImage(ctx, e.io, g, e.io, a); err != nil {
				t.Fatal(err)
			}
			gs, err := rbd.CreateGroupSnapshot(ctx, e.io, g, "s", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := img.WriteAt(ctx, randBytes(1<<20, 8), 4096); err != nil {
				t.Fatal(err)
			}
			info := img.Stat()
			img.Close(ctx)
			child := iname("gcc")
			if _, err := rbd.CloneSnapshotID(ctx, e.io, info.ID, gs.Snaps[0].SnapID, e.io, child, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("rm", "--no-progress", child) })
			got := e.export(t, e.pool+"/"+child)
			if !bytes.Equal(got[4096:4096+len(data)], data) {
				t.Fatal("the clone of the member snapshot does not read the data at the group snapshot")
			}
			if _, err := rbd.CloneSnapshotID(ctx, e.io, info.ID, gs.Snaps[0].SnapID, e.io, iname("v1"), &rbd.CreateOptions{CloneFormat: rbd.CloneFormatV1}); !errors.Is(err, rbd.ErrInvalid) {
				t.Fatalf("clone v1 of a group snapshot: %v, want ErrInvalid", err)
			}
			if err := rbd.RemoveGroupSnapshot(ctx, e.io, g, "s"); err != nil {
				t.Fatal(err)
			}
			snaps := e.snapsAll(t, a)
			if len(snaps) != 1 || snaps[0].Namespace.Type != "trash" {
				t.Fatalf("after removing the group snapshot under a clone, %s has %+v, want one trash snapshot", a, snaps)
			}
			if got := e.export(t, e.pool+"/"+child); !bytes.Equal(got[4096:4096+len(data)], data) {
				t.Fatal("the clone lost its data with the group snapshot")
			}
			if err := rbd.Remove(ctx, e.io, child); err != nil {
				t.Fatal(err)
			}
			if snaps := e.snapsAll(t, a); len(snaps) != 0 {
				t.Fatalf("after removing the clone, %s has %+v", a, snaps)
			}
		})
	}
}

// quiesceRecorder is a quiesce hook that records what it saw. Like a
// filesystem freeze it first writes through the image (flush), then
// holds.
type quiesceRecorder struct {
	mu       sync.Mutex
	events   []string
	fail     error
	quiesced bool
	flush    func(ctx context.Context) error
}

func (q *quiesceRecorder) hooks(hold time.Duration) *rbd.QuiesceHooks {
	return &rbd.QuiesceHooks{
		Quiesce: func(ctx context.Context) error {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.events = append(q.events, "quiesce")
			if q.fail != nil {
				return q.fail
			}
			if q.flush != nil {
				if err := q.flush(ctx); err != nil {
					return err
				}
			}
			q.quiesced = true
			return nil
		},
		Unquiesce: func(ctx context.Context) {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.events = append(q.events, "unquiesce")
			q.quiesced = false
		},
		Hold: hold,
	}
}

func (q *quiesceRecorder) seen() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.events)
}

func (q *quiesceRecorder) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.events = nil
}

// Our image being served (holding the exclusive lock, writing) answers
// the CLI's quiesce: `rbd snap create` runs our Quiesce hook before the
// snapshot and Unquiesce after; --skip-quiesce runs neither; a hook that
// fails fails `rbd snap create` unless --ignore-quiesce-error. `rbd group
// snap create` of a group our image is in quiesces it too. And our own
// CreateSnapshot and CreateGroupSnapshot (from another client) do the
// same to it.
func TestInteropQuiesce(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a := iname("qa")
			if _, err := rbd.Create(ctx, e.io, a, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdQuiet("snap", "purge", a); e.rbdQuiet("rm", "--no-progress", a) })
			img, err := rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			var flushes int
			rec := &quiesceRecorder{flush: func(ctx context.Context) error {
				flushes++
				_, err := img.WriteAt(ctx, []byte(fmt.Sprintf("flush %03d", flushes)), 1<<20)
				return err
			}}
			img.OnQuiesce(rec.hooks(0))
			if _, err := img.WriteAt(ctx, []byte("served"), 0); err != nil {
				t.Fatal(err)
			}
			_, handedOver := img.LockStats()
			expect := func(what string, want ...string) {
				t.Helper()
				wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				waitFor(t, wctx, what, func() bool { return slices.Equal(rec.seen(), want) })
				rec.reset()
			}

			// `rbd snap create` asks us, the lock owner, to snapshot: we
			// quiesce while still owning the lock, so the hook's flush
			// goes through and is in the snapshot, and the lock stays.
			start := time.Now()
			e.rbdg(t, "snap", "create", e.pool+"/"+a+"@cli1")
			t.Logf("rbd snap create with our quiesce took %v", time.Since(start))
			expect("rbd snap create's quiesce", "quiesce", "unquiesce")
			if got := e.export(t, e.pool+"/"+a+"@cli1"); string(got[1<<20:1<<20+9]) != "flush 001" {
				t.Fatalf("the snapshot lacks the quiesce hook's flush: %q", got[1<<20:1<<20+9])
			}
			if _, n := img.LockStats(); n != handedOver || !img.OwnsLock() {
				t.Fatalf("the lock changed hands for rbd snap create (%d → %d hand-overs, owner %v)", handedOver, n, img.OwnsLock())
			}
			if out, err := e.rbdgErr("snap", "create", e.pool+"/"+a+"@cli1"); err == nil || !strings.Contains(err.Error(), "exists") {
				t.Fatalf("rbd snap create of an existing name: %v %s", err, out)
			}
			if got := rec.seen(); len(got) != 0 {
				t.Fatalf("an existing name quiesced: %v", got) // librbd refuses it before asking
			}
			if _, err := img.WriteAt(ctx, []byte("still served"), 4096); err != nil {
				t.Fatal(err)
			}
			e.rbdg(t, "snap", "create", "--skip-quiesce", e.pool+"/"+a+"@cli2")
			time.Sleep(time.Second)
			if got := rec.seen(); len(got) != 0 {
				t.Fatalf("--skip-quiesce ran %v", got)
			}

			rec.mu.Lock()
			rec.fail = syscall.EBUSY
			rec.mu.Unlock()
			if out, err := e.rbdgErr("snap", "create", e.pool+"/"+a+"@cli3"); err == nil {
				t.Fatalf("rbd snap create succeeded though our quiesce failed: %s", out)
			}
			expect("the failed quiesce", "quiesce")
			e.rbdg(t, "snap", "create", "--ignore-quiesce-error", e.pool+"/"+a+"@cli4")
			expect("the ignored failed quiesce", "quiesce")
			rec.mu.Lock()
			rec.fail = nil
			rec.mu.Unlock()

			// Ours, from another client.
			other, err := rbd.Open(ctx, e.io, a, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := other.CreateSnapshot(ctx, "ours1"); err != nil {
				t.Fatal(err)
			}
			expect("our CreateSnapshot's quiesce", "quiesce", "unquiesce")
			rec.mu.Lock()
			rec.fail = syscall.EIO
			rec.mu.Unlock()
			if _, err := other.CreateSnapshot(ctx, "ours2"); !errors.Is(err, rbd.ErrQuiesce) {
				t.Fatalf("CreateSnapshot with a failing quiesce: %v, want ErrQuiesce", err)
			}
			expect("the failed quiesce of ours", "quiesce")
			if _, err := other.CreateSnapshotOpts(ctx, "ours3", &rbd.SnapshotOptions{IgnoreQuiesceError: true}); err != nil {
				t.Fatal(err)
			}
			expect("the ignored failed quiesce of ours", "quiesce")
			rec.mu.Lock()
			rec.fail = nil
			rec.mu.Unlock()
			other.Close(ctx)

			// Group snapshots, the CLI's and ours.
			g := iname("qg")
			if _, err := rbd.CreateGroup(ctx, e.io, g); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.rbdgErr("group", "rm", e.pool+"/"+g) })
			if err := rbd.AddGroupImage(ctx, e.io, g, e.io, a); err != nil {
				t.Fatal(err)
			}
			e.rbdg(t, "group", "snap", "create", e.pool+"/"+g+"@cg")
			expect("rbd group snap create's quiesce", "quiesce", "unquiesce")
			if _, err := rbd.CreateGroupSnapshot(ctx, e.io, g, "og", nil); err != nil {
				t.Fatal(err)
			}
			expect("our CreateGroupSnapshot's quiesce", "quiesce", "unquiesce")
			if _, err := img.WriteAt(ctx, []byte("served after all that"), 8192); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A snapshotter that never unquiesces: the hold runs out by itself.
func TestQuiesceHoldRunsOut(t *testing.T) {
	e := newEnv(t, "pacific")
	ctx := tctx(t)
	a := iname("qh")
	if _, err := rbd.Create(ctx, e.io, a, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rbdQuiet("snap", "purge", a); e.rbdQuiet("rm", "--no-progress", a) })
	img, err := rbd.Open(ctx, e.io, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(context.Background())
	rec := &quiesceRecorder{}
	img.OnQuiesce(rec.hooks(time.Second))
	// The test's own notify: QUIESCE and no UNQUIESCE.
	if err := rbd.TestingQuiesceOnly(ctx, e.io, a); err != nil {
		t.Fatal(err)
	}
	if got := rec.seen(); !slices.Equal(got, []string{"quiesce"}) {
		t.Fatalf("after QUIESCE: %v", got)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	waitFor(t, wctx, "the hold to run out", func() bool { return slices.Equal(rec.seen(), []string{"quiesce", "unquiesce"}) })
}
