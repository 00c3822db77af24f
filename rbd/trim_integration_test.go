package rbd

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Size limits, and trims that cost what the image holds rather than what
// its size spans, against the real clusters. These tests live inside the
// package so that a counting store can sit between rbd and RADOS and show
// which deletes Remove sends.

var trimClusters = []string{"pacific", "reef", "tentacle"}

type trimEnv struct {
	cl   *cephtest.Cluster
	conn *rados.Conn
	io   *rados.IOContext
	pool string
}

func newTrimEnv(t *testing.T, name string) *trimEnv {
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
	return &trimEnv{cl: cl, conn: conn, io: io, pool: pool}
}

// cli runs the cluster's own rbd or rados tool on the test pool.
func (e *trimEnv) cli(tool string, args ...string) ([]byte, error) {
	return e.cliPool(e.pool, tool, args...)
}

func (e *trimEnv) cliPool(pool, tool string, args ...string) ([]byte, error) {
	full := append([]string{tool, "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "-p", pool}, args...)
	if pre := e.cl.Get("CEPH_CLI"); pre != "" {
		full = append(strings.Fields(pre), full...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

func (e *trimEnv) mustCLI(t *testing.T, tool string, args ...string) []byte {
	t.Helper()
	out, err := e.cli(tool, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dataObjects lists the pool's objects named <prefix>.* (`rados ls`).
func (e *trimEnv) dataObjects(t *testing.T, prefix string) []string {
	t.Helper()
	return e.dataObjectsIn(t, e.pool, prefix)
}

func (e *trimEnv) dataObjectsIn(t *testing.T, pool, prefix string) []string {
	t.Helper()
	ls, err := e.cliPool(pool, "rados", "ls")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(ls), "\n") {
		if strings.HasPrefix(l, prefix+".") {
			out = append(out, l)
		}
	}
	return out
}

// radosPut writes an object with the rados CLI, as another client would.
func (e *trimEnv) radosPut(t *testing.T, oid string, data []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "obj")
	_ = os.Chmod(filepath.Dir(p), 0o777)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustCLI(t, "rados", "put", oid, p)
}

func trimName(what string) string {
	return fmt.Sprintf("rbdtest-trim-%s-%x", what, rand.Uint32())
}

func trimCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func trimRand(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// countingStore passes everything to a real store and counts the deletes
// of data objects and the pool listings; the stores derived from it (data
// pool, snap context) count into the same counters.
type countingStore struct {
	store
	c *trimCounters
}

type trimCounters struct {
	mu      sync.Mutex
	removes map[string]int // data object name → deletes sent
	lists   int
}

func newCountingStore(s store) *countingStore {
	return &countingStore{store: s, c: &trimCounters{removes: map[string]int{}}}
}

func (s *countingStore) wrap(in store) store { return &countingStore{store: in, c: s.c} }
func (s *countingStore) withSnapContext(sc SnapContext) store {
	return s.wrap(s.store.withSnapContext(sc))
}
func (s *countingStore) withReadSnap(snap uint64) store { return s.wrap(s.store.withReadSnap(snap)) }
func (s *countingStore) withPool(ctx context.Context, pool int64, ns string) (store, error) {
	in, err := s.store.withPool(ctx, pool, ns)
	if err != nil {
		return nil, err
	}
	return s.wrap(in), nil
}

func (s *countingStore) remove(ctx context.Context, oid string) error {
	if strings.HasPrefix(oid, dataPrefix) {
		s.c.mu.Lock()
		s.c.removes[oid]++
		s.c.mu.Unlock()
	}
	return s.store.remove(ctx, oid)
}

func (s *countingStore) listObjects(ctx context.Context, fn func(string) error) error {
	s.c.mu.Lock()
	s.c.lists++
	s.c.mu.Unlock()
	return s.store.listObjects(ctx, fn)
}

func (s *countingStore) counts() (removes, distinct, lists int) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, n := range s.c.removes {
		removes += n
	}
	return removes, len(s.c.removes), s.c.lists
}

// (a) Create refuses, with ErrInvalid and before writing anything, a size
// whose object count is past the object map's limit, as librbd does; the
// same size without an object map is accepted by librbd and by us (and a
// 4 EiB image removes quickly). Resize refuses to grow an object-map
// image past the limit and leaves it as it was.
func TestTrimSizeLimits(t *testing.T) {
	om := FeatureLayering | FeatureExclusiveLock | FeatureObjectMap
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			ctx := trimCtx(t, 3*time.Minute)
			huge := uint64(4 << 60)

			// librbd first: refused with object-map, accepted without.
			cliName := trimName("cli")
			if _, err := e.cli("rbd", "create", "--size", "4E", "--image-feature", "layering,exclusive-lock,object-map", cliName); err == nil {
				e.cli("rbd", "rm", "--no-progress", cliName)
				t.Fatal("rbd create --size 4E with object-map succeeded; librbd's limit changed?")
			}
			e.mustCLI(t, "rbd", "create", "--size", "4E", "--image-feature", "layering", cliName)
			t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, cliName) })

			name := trimName("om4e")
			_, err := Create(ctx, e.io, name, huge, &CreateOptions{Features: om})
			if !errors.Is(err, ErrInvalid) {
				_ = Remove(cleanupCtx(t), e.io, name)
				t.Fatalf("Create 4 EiB with object-map: %v, want ErrInvalid", err)
			}
			// Nothing left: no id object, no directory entry, no image.
			rs := newRadosStore(e.io)
			if ok, err := rs.exists(ctx, IDObjectName(name)); err != nil || ok {
				t.Fatalf("rbd_id.%s exists=%v err=%v after a refused create", name, ok, err)
			}
			if _, err := rs.call(ctx, DirectoryObject, clsRBD, "dir_get_id", stringArg(name)); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("directory entry after a refused create: %v", err)
			}
			if ls := string(e.mustCLI(t, "rbd", "ls")); strings.Contains(ls, name) {
				t.Fatalf("rbd ls shows %s", name)
			}
			// Without the object map the same size is fine, and so is removing it.
			if _, err := Create(ctx, e.io, name, huge, &CreateOptions{Features: FeatureLayering}); err != nil {
				t.Fatalf("Create 4 EiB without object-map: %v", err)
			}
			var info struct {
				Size uint64 `json:"size"`
			}
			if err := json.Unmarshal(e.mustCLI(t, "rbd", "info", "--format", "json", name), &info); err != nil || info.Size != huge {
				t.Fatalf("rbd info: size %d, %v", info.Size, err)
			}
			rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			start := time.Now()
			if err := Remove(rctx, e.io, name); err != nil {
				t.Fatalf("Remove 4 EiB: %v", err)
			}
			t.Logf("removed a 4 EiB image in %v", time.Since(start))
			if err := Remove(rctx, e.io, cliName); err != nil {
				t.Fatalf("Remove of the CLI's 4 EiB image: %v", err)
			}

			// Resize past the limit: refused, size unchanged.
			rname := trimName("omgrow")
			if _, err := Create(ctx, e.io, rname, 1<<30, &CreateOptions{Features: om}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, rname) })
			img, err := Open(ctx, e.io, rname, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close(context.Background())
			if err := img.Resize(ctx, huge); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Resize to 4 EiB with object-map: %v, want ErrInvalid", err)
			}
			if err := img.Refresh(ctx); err != nil || img.Size() != 1<<30 {
				t.Fatalf("size after refused resize: %d, %v", img.Size(), err)
			}
		})
	}
}

// (b) A 1 PiB image without an object map (2^28 object numbers) with a
// few objects at far offsets, written by us and by another client (rados
// put), is removed in seconds and leaves no data object.
func TestTrimRemoveHugeSparse(t *testing.T) {
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			ctx := trimCtx(t, 3*time.Minute)
			name := trimName("pib")
			size := uint64(1 << 50)
			if _, err := Create(ctx, e.io, name, size, &CreateOptions{Features: FeatureLayering}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, name) })
			img, err := Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			prefix := img.Stat().ObjectPrefix
			for i, off := range []uint64{0, 1 << 40, 1<<49 + 12345, size - 4096} {
				if _, err := img.WriteAt(ctx, trimRand(4096, uint64(i)), off); err != nil {
					t.Fatal(err)
				}
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			e.radosPut(t, DataObjectName(prefix, (1<<48)>>22), trimRand(8192, 9))
			if got := e.dataObjects(t, prefix); len(got) != 5 {
				t.Fatalf("%d data objects before remove: %v", len(got), got)
			}

			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := Remove(rctx, e.io, name); err != nil {
				t.Fatalf("Remove 1 PiB: %v (after %v)", err, time.Since(start))
			}
			took := time.Since(start)
			t.Logf("removed a 1 PiB sparse image in %v", took)
			if took > 15*time.Second {
				t.Fatalf("Remove took %v", took)
			}
			if left := e.dataObjects(t, prefix); len(left) != 0 {
				t.Fatalf("data objects left: %v", left)
			}
			if ls := string(e.mustCLI(t, "rbd", "ls")); strings.Contains(ls, name) {
				t.Fatalf("rbd ls still shows %s", name)
			}
		})
	}
}

// (b) with a separate data pool: the data objects live there, and that is
// the pool Remove must list (the image's own pool holds none of them).
func TestTrimRemoveHugeSparseDataPool(t *testing.T) {
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			ctx := trimCtx(t, 3*time.Minute)
			pool := trimName("data")
			if err := e.conn.PoolCreate(ctx, pool, 8); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.conn.PoolDelete(cleanupCtx(t), pool) })
			_ = e.conn.ApplicationEnable(ctx, pool, "rbd")
			dio, err := e.conn.OpenIOContext(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			name := trimName("dp")
			size := uint64(1 << 50)
			if _, err := Create(ctx, e.io, name, size, &CreateOptions{Features: FeatureLayering, DataPool: dio.PoolID(), DataPoolSet: true}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, name) })
			img, err := Open(ctx, e.io, name, nil)
			if err != nil {
				t.Fatal(err)
			}
			prefix := img.Stat().ObjectPrefix
			for i, off := range []uint64{0, 1 << 45, size - 4096} {
				if _, err := img.WriteAt(ctx, trimRand(4096, uint64(i)), off); err != nil {
					t.Fatal(err)
				}
			}
			if err := img.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := e.dataObjectsIn(t, pool, prefix); len(got) != 3 {
				t.Fatalf("%d data objects in the data pool: %v", len(got), got)
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			start := time.Now()
			if err := Remove(rctx, e.io, name); err != nil {
				t.Fatalf("Remove: %v (after %v)", err, time.Since(start))
			}
			t.Logf("removed a 1 PiB image with a data pool in %v", time.Since(start))
			if left := e.dataObjectsIn(t, pool, prefix); len(left) != 0 {
				t.Fatalf("data objects left in the data pool: %v", left)
			}
		})
	}
}

// (c) With an object map, Remove deletes the objects the map says exist,
// and no others: a 1 TiB image (262144 objects) with four written objects
// costs four deletes and no pool listing. When the image flags say the map
// is invalid, Remove does not trust it and still removes everything,
// including an object the map does not know of.
func TestTrimRemoveFollowsObjectMap(t *testing.T) {
	om := FeatureLayering | FeatureExclusiveLock | FeatureObjectMap
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			for _, invalid := range []bool{false, true} {
				t.Run(fmt.Sprintf("invalid=%v", invalid), func(t *testing.T) {
					ctx := trimCtx(t, 3*time.Minute)
					name := trimName("om")
					size := uint64(1 << 40)
					if _, err := Create(ctx, e.io, name, size, &CreateOptions{Features: om}); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, name) })
					img, err := Open(ctx, e.io, name, nil)
					if err != nil {
						t.Fatal(err)
					}
					prefix, id := img.Stat().ObjectPrefix, img.id
					written := []uint64{0, 100, 131072, 262143}
					for i, o := range written {
						if _, err := img.WriteAt(ctx, trimRand(512, uint64(i)), o<<22+1000); err != nil {
							t.Fatal(err)
						}
					}
					if err := img.Close(ctx); err != nil {
						t.Fatal(err)
					}
					// An object behind the map's back (the map says NONEXISTENT).
					stray := DataObjectName(prefix, 200000)
					e.radosPut(t, stray, []byte("stray"))
					if invalid {
						// set_flags(flags, mask, snap id), as `rbd` sees after
						// an object map failure.
						a := enc()
						a.U64(FlagObjectMapInvalid)
						a.U64(FlagObjectMapInvalid)
						a.U64(NoSnap)
						if err := newRadosStore(e.io).write(ctx, HeaderObjectName(id), opCall(clsRBD, "set_flags", a.B)); err != nil {
							t.Fatal(err)
						}
					}

					cs := newCountingStore(newRadosStore(e.io))
					start := time.Now()
					if err := remove(ctx, cs, name, ""); err != nil {
						t.Fatal(err)
					}
					removes, distinct, lists := cs.counts()
					t.Logf("remove: %d data deletes (%d objects), %d listings, %v", removes, distinct, lists, time.Since(start))
					left := e.dataObjects(t, prefix)
					if invalid {
						if len(left) != 0 {
							t.Fatalf("data objects left with an invalid map: %v", left)
						}
						if lists != 1 {
							t.Fatalf("%d listings, want 1 (the map is invalid)", lists)
						}
						return
					}
					if removes != len(written) || distinct != len(written) || lists != 0 {
						t.Fatalf("%d deletes of %d objects and %d listings, want %d, %d, 0",
							removes, distinct, lists, len(written), len(written))
					}
					if len(left) != 1 || left[0] != stray {
						t.Fatalf("data objects left: %v, want only the stray %s", left, stray)
					}
					e.mustCLI(t, "rados", "rm", stray)
				})
			}
		})
	}
}

// (d) Shrinking a large sparse image deletes the objects past the new end
// (however far they are) and keeps the data before it byte for byte,
// with and without an object map.
func TestTrimShrinkSparse(t *testing.T) {
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			for _, tc := range []struct {
				name     string
				size     uint64
				features uint64
			}{
				{"plain-1PiB", 1 << 50, FeatureLayering},
				{"objectmap-1TiB", 1 << 40, FeatureLayering | FeatureExclusiveLock | FeatureObjectMap},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ctx := trimCtx(t, 3*time.Minute)
					name := trimName("shrink")
					if _, err := Create(ctx, e.io, name, tc.size, &CreateOptions{Features: tc.features}); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = Remove(cleanupCtx(t), e.io, name) })
					img, err := Open(ctx, e.io, name, nil)
					if err != nil {
						t.Fatal(err)
					}
					defer img.Close(context.Background())
					prefix := img.Stat().ObjectPrefix
					head := trimRand(10<<20, 1) // objects 0..2
					if _, err := img.WriteAt(ctx, head, 1<<20); err != nil {
						t.Fatal(err)
					}
					far := []uint64{1 << 30, tc.size/2 + 777, tc.size - 512}
					for i, off := range far {
						if _, err := img.WriteAt(ctx, trimRand(512, uint64(10+i)), off); err != nil {
							t.Fatal(err)
						}
					}
					newSize := uint64(9 << 20) // inside object 2
					rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					start := time.Now()
					if err := img.Resize(rctx, newSize); err != nil {
						t.Fatalf("Resize: %v (after %v)", err, time.Since(start))
					}
					t.Logf("shrank %d bytes to %d in %v", tc.size, newSize, time.Since(start))
					left := e.dataObjects(t, prefix)
					want := []string{DataObjectName(prefix, 0), DataObjectName(prefix, 1), DataObjectName(prefix, 2)}
					if strings.Join(left, ",") != strings.Join(want, ",") && !sameSet(left, want) {
						t.Fatalf("data objects after shrink: %v, want %v", left, want)
					}
					// Our view and librbd's: the kept bytes unchanged.
					expect := make([]byte, newSize)
					copy(expect[1<<20:], head)
					got := make([]byte, newSize)
					if _, err := img.ReadAt(ctx, got, 0); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, expect) {
						t.Fatal("data before the new end changed")
					}
					p := filepath.Join(t.TempDir(), "export")
					_ = os.Chmod(filepath.Dir(p), 0o777)
					if err := img.Close(ctx); err != nil { // librbd takes the lock for object-map images
						t.Fatal(err)
					}
					e.mustCLI(t, "rbd", "export", "--no-progress", name, p)
					exp, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(exp, expect) {
						t.Fatalf("rbd export: %d bytes, differs from the kept data", len(exp))
					}
					if tc.features&FeatureObjectMap != 0 {
						e.mustCLI(t, "rbd", "object-map", "check", name)
					}
				})
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// cleanupCtx bounds a cleanup Remove, so that a regression that makes
// removal slow fails the test instead of hanging the suite.
func cleanupCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// failObjectMapStore fails the object map write of a create, after the id
// object, directory entry and header exist, and remembers the header.
type failObjectMapStore struct {
	store
	mu     sync.Mutex
	header string
}

var errInjected = errors.New("injected object map failure")

func (f *failObjectMapStore) write(ctx context.Context, oid string, w *rados.WriteOp) error {
	if strings.HasPrefix(oid, objectMapPrefix) {
		return errInjected
	}
	if strings.HasPrefix(oid, headerPrefix) {
		f.mu.Lock()
		f.header = oid
		f.mu.Unlock()
	}
	return f.store.write(ctx, oid, w)
}

// A create that fails at its last step (the object map) removes what it
// made before: id object, directory entry and header.
func TestTrimCreateFailureLeavesNothing(t *testing.T) {
	for _, c := range trimClusters {
		t.Run(c, func(t *testing.T) {
			e := newTrimEnv(t, c)
			ctx := trimCtx(t, time.Minute)
			name := trimName("undo")
			fs := &failObjectMapStore{store: newRadosStore(e.io)}
			_, err := create(ctx, fs, name, 1<<30, &CreateOptions{Features: FeatureLayering | FeatureExclusiveLock | FeatureObjectMap})
			if !errors.Is(err, errInjected) {
				t.Fatalf("create: %v", err)
			}
			rs := newRadosStore(e.io)
			if fs.header == "" {
				t.Fatal("no header was written before the failure")
			}
			for _, oid := range []string{IDObjectName(name), fs.header} {
				if ok, err := rs.exists(ctx, oid); err != nil || ok {
					t.Fatalf("%s exists=%v err=%v after a failed create", oid, ok, err)
				}
			}
			if _, err := rs.call(ctx, DirectoryObject, clsRBD, "dir_get_id", stringArg(name)); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("directory entry after a failed create: %v", err)
			}
		})
	}
}
