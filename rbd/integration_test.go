package rbd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Interop tests against the real clusters: images made by us are checked
// with the cluster's own `rbd` CLI, and images made by `rbd` are read by us.

var clusters = []string{"pacific", "reef", "tentacle"}

type env struct {
	cl   *cephtest.Cluster
	conn *rados.Conn
	io   *rados.IOContext
	pool string
}

func newEnv(t *testing.T, name string) *env {
	t.Helper()
	cl := cephtest.Need(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	pool := cl.Get("CEPH_POOL")
	io, err := conn.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &env{cl: cl, conn: conn, io: io, pool: pool}
}

func (e *env) rbd(t *testing.T, args ...string) []byte {
	t.Helper()
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "-p", e.pool}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rbd %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// rbdQuiet runs the rbd CLI for cleanups, ignoring failures.
func (e *env) rbdQuiet(args ...string) {
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "-p", e.pool}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	_ = exec.Command(full[0], full[1:]...).Run()
}

func (e *env) export(t *testing.T, spec string) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "export")
	os.Chmod(filepath.Dir(p), 0o777)
	e.rbd(t, "export", "--no-progress", spec, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) importFile(t *testing.T, data []byte, name string, args ...string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "import")
	os.Chmod(filepath.Dir(p), 0o777)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.rbd(t, append(append([]string{"import", "--no-progress"}, args...), p, name)...)
}

type cliInfo struct {
	Size        uint64   `json:"size"`
	Order       uint8    `json:"order"`
	Features    []string `json:"features"`
	StripeUnit  uint64   `json:"stripe_unit"`
	StripeCount uint64   `json:"stripe_count"`
	Prefix      string   `json:"block_name_prefix"`
}

func (e *env) info(t *testing.T, name string) cliInfo {
	t.Helper()
	var i cliInfo
	if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", name), &i); err != nil {
		t.Fatal(err)
	}
	return i
}

func iname(what string) string {
	return fmt.Sprintf("rbdtest-%s-%d-%x", what, time.Now().UnixNano()%1e9, rand.Uint32())
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Our Create (plain, striped, and with exclusive-lock + object map), our
// writes; `rbd info` and `rbd export` must agree; then our Remove.
func TestInteropCreateWriteExport(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			cases := []struct {
				what string
				opts rbd.CreateOptions
				want []string
			}{
				{"plain", rbd.CreateOptions{}, []string{"layering"}},
				{"striped", rbd.CreateOptions{Order: 20, StripeUnit: 64 << 10, StripeCount: 3}, []string{"layering", "striping"}},
				{"objmap", rbd.CreateOptions{Features: rbd.FeaturesDefault}, []string{"layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"}},
			}
			for _, tc := range cases {
				t.Run(tc.what, func(t *testing.T) {
					name := iname(tc.what)
					const size = 24 << 20
					if _, err := rbd.Create(ctx, e.io, name, size, &tc.opts); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })
					info := e.info(t, name)
					if info.Size != size || !slices.Equal(info.Features, tc.want) {
						t.Fatalf("rbd info: %+v", info)
					}
					if tc.opts.StripeCount > 0 && (info.StripeUnit != tc.opts.StripeUnit || info.StripeCount != tc.opts.StripeCount) {
						t.Fatalf("rbd info striping: %+v", info)
					}
					img, err := rbd.Open(ctx, e.io, name, nil)
					if err != nil {
						t.Fatal(err)
					}
					want := make([]byte, size)
					for i, off := range []uint64{0, 4<<20 - 1000, 9 << 20, size - 5000} {
						p := randBytes(70000+i, uint64(i+1))
						if off+uint64(len(p)) > size {
							p = p[:size-off]
						}
						if _, err := img.WriteAt(ctx, p, off); err != nil {
							t.Fatal(err)
						}
						copy(want[off:], p)
					}
					if err := img.Discard(ctx, 9<<20+100, 200); err != nil {
						t.Fatal(err)
					}
					clear(want[9<<20+100 : 9<<20+300])
					got := make([]byte, size)
					if _, err := img.ReadAt(ctx, got, 0); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatal("our read differs from what we wrote")
					}
					if err := img.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if exp := e.export(t, name); !bytes.Equal(exp, want) {
						t.Fatalf("rbd export differs (%d bytes)", len(exp))
					}
					if tc.what == "objmap" {
						// The object map we maintained must satisfy rbd's own check.
						e.rbd(t, "object-map", "check", name)
						if out := e.rbd(t, "info", name); strings.Contains(string(out), "object map invalid") {
							t.Fatalf("object map flagged invalid:\n%s", out)
						}
					}
					if err := rbd.Remove(ctx, e.io, name); err != nil {
						t.Fatal(err)
					}
					if ls := e.rbd(t, "ls"); strings.Contains(string(ls), name) {
						t.Fatalf("%s still listed after Remove", name)
					}
					if _, err := rbd.Open(ctx, e.io, name, nil); !errors.Is(err, rbd.ErrNotFound) {
						t.Fatalf("open after remove: %v", err)
					}
				})
			}
		})
	}
}

// `rbd import` (default features, and striped) → our reads are
// byte-identical; a snapshot keeps the old data after our write (snap
// context), a clone reads through to its parent and copies up on write;
// Resize is seen by `rbd info` and `rbd export`.
func TestInteropImportSnapshotClone(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const size = 12<<20 + 4096
			orig := randBytes(size, 7)
			for _, striped := range []bool{false, true} {
				t.Run(fmt.Sprintf("striped=%v", striped), func(t *testing.T) {
					name := iname("imp")
					args := []string{}
					if striped {
						args = []string{"--object-size", "1M", "--stripe-unit", "65536", "--stripe-count", "4"}
					}
					e.importFile(t, orig, name, args...)
					clone := name + "-c"
					t.Cleanup(func() {
						e.rbdQuiet("rm", "--no-progress", clone)
						e.rbdQuiet("snap", "unprotect", name+"@s1")
						e.rbdQuiet("snap", "purge", "--no-progress", name)
						e.rbdQuiet("rm", "--no-progress", name)
					})
					img, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{ReadOnly: true})
					if err != nil {
						t.Fatal(err)
					}
					// Closed before the cleanups run: its header watch
					// would make `rbd rm` refuse the image.
					defer img.Close(context.Background())
					got := make([]byte, size)
					if _, err := img.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, orig) {
						t.Fatalf("read of imported image differs (err %v)", err)
					}
					e.rbd(t, "snap", "create", name+"@s1")
					e.rbd(t, "snap", "protect", name+"@s1")

					w, err := rbd.Open(ctx, e.io, name, nil)
					if err != nil {
						t.Fatal(err)
					}
					patch := randBytes(300000, 9)
					const at = 3<<20 - 77
					if _, err := w.WriteAt(ctx, patch, at); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(ctx); err != nil {
						t.Fatal(err)
					}
					head := slices.Clone(orig)
					copy(head[at:], patch)
					if exp := e.export(t, name); !bytes.Equal(exp, head) {
						t.Fatal("rbd export of the head differs")
					}
					if exp := e.export(t, name+"@s1"); !bytes.Equal(exp, orig) {
						t.Fatal("snapshot lost its data: writes did not carry the snap context")
					}
					s1, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Snapshot: "s1"})
					if err != nil {
						t.Fatal(err)
					}
					if _, err := s1.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, orig) {
						t.Fatalf("our snapshot read differs (err %v)", err)
					}

					// Clone: reads fall through to s1, writes copy up.
					e.rbd(t, "clone", name+"@s1", clone)
					cl, err := rbd.Open(ctx, e.io, clone, nil)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := cl.ReadAt(ctx, got, 0); err != nil || !bytes.Equal(got, orig) {
						t.Fatalf("clone read differs from its parent snapshot (err %v)", err)
					}
					cpatch := randBytes(5000, 11)
					const cat = 1<<20 + 333
					if _, err := cl.WriteAt(ctx, cpatch, cat); err != nil {
						t.Fatal(err)
					}
					cwant := slices.Clone(orig)
					copy(cwant[cat:], cpatch)
					// Grow and shrink.
					if err := cl.Resize(ctx, size+(8<<20)); err != nil {
						t.Fatal(err)
					}
					if i := e.info(t, clone); i.Size != size+(8<<20) {
						t.Fatalf("rbd info size %d after grow", i.Size)
					}
					if err := cl.Resize(ctx, 5<<20+17); err != nil {
						t.Fatal(err)
					}
					cwant = cwant[:5<<20+17]
					if err := cl.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if exp := e.export(t, clone); !bytes.Equal(exp, cwant) {
						t.Fatalf("rbd export of the clone differs (%d bytes, want %d)", len(exp), len(cwant))
					}
				})
			}
		})
	}
}

// Our snapshots: ids from the monitors, snapshot_add, object map copy;
// `rbd snap ls`, `rbd export @snap` and `rbd object-map check` agree; then
// our RemoveSnapshot.
func TestInteropSnapshots(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			for _, features := range []uint64{rbd.FeatureLayering, rbd.FeaturesDefault} {
				t.Run(strings.Join(rbd.FeatureNames(features), ","), func(t *testing.T) {
					name := iname("snap")
					const size = 10 << 20
					if _, err := rbd.Create(ctx, e.io, name, size, &rbd.CreateOptions{Features: features}); err != nil {
						t.Fatal(err)
					}
					img, err := rbd.Open(ctx, e.io, name, nil)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() {
						_ = img.Close(context.Background())
						e.rbdQuiet("snap", "purge", "--no-progress", name)
						_ = rbd.Remove(context.Background(), e.io, name)
					})
					a := randBytes(size, 21)
					if _, err := img.WriteAt(ctx, a, 0); err != nil {
						t.Fatal(err)
					}
					id, err := img.CreateSnapshot(ctx, "s1")
					if err != nil {
						t.Fatal(err)
					}
					b := slices.Clone(a)
					patch := randBytes(1<<20, 22)
					copy(b[5<<20-99:], patch)
					if _, err := img.WriteAt(ctx, patch, 5<<20-99); err != nil {
						t.Fatal(err)
					}
					var snaps []struct {
						ID   uint64 `json:"id"`
						Name string `json:"name"`
					}
					if err := json.Unmarshal(e.rbd(t, "snap", "ls", "--format", "json", name), &snaps); err != nil {
						t.Fatal(err)
					}
					if len(snaps) != 1 || snaps[0].Name != "s1" || snaps[0].ID != id {
						t.Fatalf("rbd snap ls: %+v, we made id %d", snaps, id)
					}
					if exp := e.export(t, name+"@s1"); !bytes.Equal(exp, a) {
						t.Fatal("rbd export of our snapshot differs")
					}
					if exp := e.export(t, name); !bytes.Equal(exp, b) {
						t.Fatal("rbd export of the head differs")
					}
					if features&rbd.FeatureObjectMap != 0 {
						if err := img.Close(ctx); err != nil {
							t.Fatal(err)
						}
						for _, spec := range []string{name, name + "@s1"} {
							out := e.rbd(t, "object-map", "check", "--no-progress", spec)
							if info := e.rbd(t, "info", spec); strings.Contains(string(info), "invalid") {
								t.Fatalf("%s object map invalid after check:\n%s%s", spec, out, info)
							}
						}
						if img, err = rbd.Open(ctx, e.io, name, nil); err != nil {
							t.Fatal(err)
						}
					}
					if err := img.RemoveSnapshot(ctx, "s1"); err != nil {
						t.Fatal(err)
					}
					if out := e.rbd(t, "snap", "ls", name); strings.Contains(string(out), "s1") {
						t.Fatalf("snapshot still listed:\n%s", out)
					}
					if err := img.Close(ctx); err != nil {
						t.Fatal(err)
					}
					if exp := e.export(t, name); !bytes.Equal(exp, b) {
						t.Fatal("head changed by snapshot removal")
					}
				})
			}
		})
	}
}

// Our clone v2 of an `rbd import`ed image's snapshot: `rbd info` shows the
// parent, `rbd children` the child, `rbd export` the parent's data plus our
// write; our Remove detaches the child so the snapshot can go.
func TestInteropCloneV2(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			const size = 6<<20 + 512
			orig := randBytes(size, 31)
			parent := iname("par")
			child := parent + "-c"
			e.importFile(t, orig, parent)
			e.rbd(t, "snap", "create", parent+"@s1")
			t.Cleanup(func() {
				_ = rbd.Remove(context.Background(), e.io, child)
				e.rbdQuiet("snap", "purge", "--no-progress", parent)
				e.rbdQuiet("rm", "--no-progress", parent)
			})
			if _, err := rbd.Clone(ctx, e.io, parent, "s1", e.io, child, nil); err != nil {
				t.Fatal(err)
			}
			var info struct {
				OpFeatures []string `json:"op_features"`
				Parent     struct {
					Image    string `json:"image"`
					Snapshot string `json:"snapshot"`
					Overlap  uint64 `json:"overlap"`
				} `json:"parent"`
			}
			if err := json.Unmarshal(e.rbd(t, "info", "--format", "json", child), &info); err != nil {
				t.Fatal(err)
			}
			if info.Parent.Image != parent || info.Parent.Snapshot != "s1" || info.Parent.Overlap != size ||
				!slices.Contains(info.OpFeatures, "clone-child") {
				t.Fatalf("rbd info of our clone: %+v", info)
			}
			if out := e.rbd(t, "children", parent+"@s1"); !strings.Contains(string(out), child) {
				t.Fatalf("rbd children: %s", out)
			}
			img, err := rbd.Open(ctx, e.io, child, nil)
			if err != nil {
				t.Fatal(err)
			}
			patch := randBytes(10000, 32)
			if _, err := img.WriteAt(ctx, patch, 4<<20-5000); err != nil {
				t.Fatal(err)
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(orig)
			copy(want[4<<20-5000:], patch)
			if exp := e.export(t, child); !bytes.Equal(exp, want) {
				t.Fatal("rbd export of our clone differs")
			}
			if err := rbd.Remove(ctx, e.io, child); err != nil {
				t.Fatal(err)
			}
			if out := e.rbd(t, "children", parent+"@s1"); strings.Contains(string(out), child) {
				t.Fatalf("child still listed after Remove: %s", out)
			}

			// A second clone, flattened: it keeps the data and loses the parent.
			flat := parent + "-f"
			if _, err := rbd.Clone(ctx, e.io, parent, "s1", e.io, flat, nil); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, flat) })
			fi, err := rbd.Open(ctx, e.io, flat, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fi.WriteAt(ctx, patch, 100); err != nil {
				t.Fatal(err)
			}
			if err := fi.Flatten(ctx); err != nil {
				t.Fatal(err)
			}
			if fi.Stat().Parent != nil {
				t.Fatal("parent still set after Flatten")
			}
			if err := fi.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if out := e.rbd(t, "info", flat); strings.Contains(string(out), "parent:") {
				t.Fatalf("rbd info still shows a parent:\n%s", out)
			}
			if out := e.rbd(t, "children", parent+"@s1"); strings.TrimSpace(string(out)) != "" {
				t.Fatalf("children after flatten: %s", out)
			}
			e.rbd(t, "snap", "rm", "--no-progress", parent+"@s1")
			want = slices.Clone(orig)
			copy(want[100:], patch)
			if exp := e.export(t, flat); !bytes.Equal(exp, want) {
				t.Fatal("rbd export of the flattened clone differs (after its parent snapshot was removed)")
			}
		})
	}
}

// Our trash move is understood by `rbd trash ls`/`rbd trash rm`, and our
// trash remove deletes what `rbd` sees as trashed.
func TestInteropTrash(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			a, b := iname("tra"), iname("trb")
			for _, n := range []string{a, b} {
				e.importFile(t, randBytes(3<<20, 41), n)
			}
			ida, err := rbd.TrashMove(ctx, e.io, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			idb, err := rbd.TrashMove(ctx, e.io, b, 0)
			if err != nil {
				t.Fatal(err)
			}
			var tl []struct{ ID, Name string }
			if err := json.Unmarshal(e.rbd(t, "trash", "ls", "--format", "json"), &tl); err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, x := range tl {
				if (x.ID == ida && x.Name == a) || (x.ID == idb && x.Name == b) {
					found++
				}
			}
			if found != 2 {
				t.Fatalf("rbd trash ls: %+v", tl)
			}
			if ls := e.rbd(t, "ls"); strings.Contains(string(ls), a) {
				t.Fatal("trashed image still listed by rbd ls")
			}
			ours, err := rbd.TrashList(ctx, e.io)
			if err != nil || ours[ida].Name != a || ours[idb].Source != rbd.TrashSourceUser {
				t.Fatalf("TrashList: %+v %v", ours, err)
			}
			e.rbd(t, "trash", "rm", "--no-progress", ida)
			if err := rbd.TrashRemove(ctx, e.io, idb); err != nil {
				t.Fatal(err)
			}
			if out := e.rbd(t, "trash", "ls"); strings.Contains(string(out), ida) || strings.Contains(string(out), idb) {
				t.Fatalf("still in the trash:\n%s", out)
			}
			if _, err := rbd.OpenByID(ctx, e.io, idb, &rbd.OpenOptions{ReadOnly: true}); !errors.Is(err, rbd.ErrNotFound) {
				t.Fatalf("open of removed trash image: %v", err)
			}
		})
	}
}

// The exclusive lock: a live holder makes a second writer fail with
// ErrBusy; a lock left by a client that is gone (here `rbd lock add`,
// whose process has exited) is broken after blocklisting it.
func TestInteropExclusiveLock(t *testing.T) {
	for _, c := range clusters {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, c)
			ctx := tctx(t)
			name := iname("lck")
			if _, err := rbd.Create(ctx, e.io, name, 8<<20, &rbd.CreateOptions{Features: rbd.FeaturesDefault}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rbd.Remove(context.Background(), e.io, name) })
			a, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Exclusive: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rbd.Open(ctx, e.io, name, &rbd.OpenOptions{Exclusive: true}); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("second exclusive writer: %v, want ErrBusy", err)
			}
			// A cooperative writer opens, but its write is refused by the
			// exclusive owner (EROFS to REQUEST_LOCK).
			c2, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c2.WriteAt(ctx, []byte("x"), 0); !errors.Is(err, rbd.ErrBusy) {
				t.Fatalf("write against an exclusive owner: %v, want ErrBusy", err)
			}
			if err := c2.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if out := e.rbd(t, "lock", "ls", name); !strings.Contains(string(out), "auto ") {
				t.Fatalf("rbd lock ls:\n%s", out)
			}
			if err := a.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if out := e.rbd(t, "lock", "ls", name); strings.Contains(string(out), "auto ") {
				t.Fatalf("lock left after Close:\n%s", out)
			}
			e.rbd(t, "lock", "add", name, "gone-client")
			b, err := rbd.Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatalf("open over a dead owner's lock: %v", err)
			}
			out := e.rbd(t, "lock", "ls", name)
			if strings.Contains(string(out), "gone-client") || !strings.Contains(string(out), "auto ") {
				t.Fatalf("rbd lock ls after the break:\n%s", out)
			}
			if _, err := b.WriteAt(ctx, []byte("after break"), 0); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}
