package rados_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

var objClusters = []string{"pacific", "reef", "tentacle"}

// env is one cluster with our connection and its own CLI tools.
type env struct {
	cl   *cephtest.Cluster
	conn *rados.Conn
	io   *rados.IOContext
	pool string
}

func newEnv(t *testing.T, name string) *env {
	t.Helper()
	cl := cephtest.Need(t, name)
	conn := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool := cl.Get("CEPH_POOL")
	io, err := conn.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &env{cl: cl, conn: conn, io: io, pool: pool}
}

// tool builds a command running the cluster's own ceph or rados CLI.
func (e *env) tool(name string, args ...string) *exec.Cmd {
	full := append([]string{name, "-c", e.cl.Conf(), "-k", e.cl.Keyring()}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	return exec.Command(full[0], full[1:]...)
}

func (e *env) run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := e.tool(name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func (e *env) rados(t *testing.T, args ...string) []byte {
	t.Helper()
	return e.run(t, nil, "rados", append([]string{"-p", e.pool}, args...)...)
}

func oname(what string) string {
	return fmt.Sprintf("radostest-%s-%d-%x", what, time.Now().UnixNano(), rand.Uint32())
}

func tctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestIntegrationObjectPutGet: 0 B .. 64 MiB objects written by us and
// read by `rados get`, and the other way round, byte for byte.
func TestIntegrationObjectPutGet(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 5*time.Minute)
			sizes := []int{0, 1, 4095, 4096, 1 << 20, 4<<20 + 7, 64 << 20}
			if testing.Short() {
				sizes = sizes[:5]
			}
			dir := t.TempDir()
			for _, size := range sizes {
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i*13 + size)
				}
				o := oname(fmt.Sprint(size))
				if err := e.io.WriteFull(ctx, o, data); err != nil {
					t.Fatalf("writefull %d: %v", size, err)
				}
				f := filepath.Join(dir, "get")
				e.rados(t, "get", o, f)
				if got, err := os.ReadFile(f); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("size %d: rados get gave %d bytes (%v), differs", size, len(got), err)
				}
				o2 := oname(fmt.Sprint(size))
				in := filepath.Join(dir, "put")
				if err := os.WriteFile(in, data, 0o644); err != nil {
					t.Fatal(err)
				}
				e.rados(t, "put", o2, in)
				st, err := e.io.Stat(ctx, o2)
				if err != nil || st.Size != uint64(size) || time.Since(st.ModTime) > time.Hour {
					t.Fatalf("stat %d: %+v %v", size, st, err)
				}
				got, err := e.io.Read(ctx, o2, 0, uint64(size)+10)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("size %d: read %d bytes (%v), differs", size, len(got), err)
				}
				// ReadInto receives the reply in the caller's buffer:
				// whole, larger than the object, and from an offset.
				for _, c := range [][2]int{{0, size}, {0, size + 4096}, {size / 3, size / 2}} {
					if c[1] == 0 {
						continue
					}
					p := bytes.Repeat([]byte{0xee}, c[1])
					n, err := e.io.ReadInto(ctx, o2, p, uint64(c[0]))
					want := data[c[0]:min(size, c[0]+c[1])]
					if err != nil || n != len(want) || !bytes.Equal(p[:n], want) {
						t.Fatalf("size %d: ReadInto(off %d, %d bytes) = %d, %v; data differs: %v",
							size, c[0], c[1], n, err, !bytes.Equal(p[:min(n, len(p))], want))
					}
				}
				for _, x := range []string{o, o2} {
					if err := e.io.Remove(ctx, x); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestIntegrationObjectOps: typed errors, create/append/zero/truncate,
// compound write and read operations, locator keys, snapshots.
func TestIntegrationObjectOps(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 2*time.Minute)
			io := e.io
			o := oname("ops")
			if _, err := io.Read(ctx, o, 0, 10); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("read of a missing object: %v", err)
			}
			if _, err := io.Stat(ctx, o); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("stat of a missing object: %v", err)
			}
			if err := io.Create(ctx, o, true); err != nil {
				t.Fatal(err)
			}
			if err := io.Create(ctx, o, true); !errors.Is(err, syscall.EEXIST) {
				t.Fatalf("second exclusive create: %v", err)
			}
			if err := io.Create(ctx, o, false); err != nil {
				t.Fatalf("non-exclusive create of an existing object: %v", err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(io.Write(ctx, o, []byte("0123456789"), 0))
			must(io.Append(ctx, o, []byte("abc")))
			must(io.Zero(ctx, o, 2, 3))
			must(io.Truncate(ctx, o, 12))
			got, err := io.Read(ctx, o, 0, 0)
			if want := "01\x00\x00\x0056789ab"; err != nil || string(got) != want {
				t.Fatalf("read %q %v, want %q", got, err, want)
			}
			if out := e.rados(t, "stat", o); !strings.Contains(string(out), "size 12") {
				t.Errorf("rados stat: %s", out)
			}

			compoundOps(t, ctx, io, o)

			// Locator key: the object is placed (and found) by the key.
			lk := io.Clone()
			lk.SetLocatorKey("some-key")
			must(lk.WriteFull(ctx, o, []byte("by key")))
			if out := e.rados(t, "--object-locator", "some-key", "get", o, "-"); string(out) != "by key" {
				t.Errorf("rados get with locator: %q", out)
			}
			must(lk.Remove(ctx, o))

			// Self-managed snapshots: a write with the snap context keeps
			// the old data readable at the snapshot.
			must(io.WriteFull(ctx, o, []byte("before")))
			snap, err := io.CreateSelfManagedSnap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sw := io.Clone()
			sw.SetSnapContext(snap, []uint64{snap})
			must(sw.WriteFull(ctx, o, []byte("after!")))
			sr := io.Clone()
			sr.SetReadSnap(snap)
			if b, err := sr.Read(ctx, o, 0, 0); err != nil || string(b) != "before" {
				t.Fatalf("read at snap %d: %q %v", snap, b, err)
			}
			if b, err := io.Read(ctx, o, 0, 0); err != nil || string(b) != "after!" {
				t.Fatalf("read of the head: %q %v", b, err)
			}
			must(io.RemoveSelfManagedSnap(ctx, snap))
			must(sw.Remove(ctx, o))

			// After Close, operations fail with ErrClosed at once.
			must(e.conn.Close())
			if err := io.WriteFull(ctx, o, nil); !errors.Is(err, rados.ErrClosed) {
				t.Fatalf("write after close: %v", err)
			}
		})
	}
}

// compoundOps checks a compound write (all steps or none) and a compound
// read with version asserts on object o, then removes it.
func compoundOps(t *testing.T, ctx context.Context, io *rados.IOContext, o string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A compound write: all steps or none.
	w := rados.NewWriteOp()
	w.AssertExists()
	w.WriteFull([]byte("whole"))
	w.SetXattr("owner", []byte("me"))
	w.SetOmap(map[string][]byte{"k1": []byte("v1"), "k2": []byte("v2")})
	w.SetOmapHeader([]byte("hdr"))
	must(w.Operate(ctx, io, o))
	ver := w.Version()
	bad := rados.NewWriteOp()
	bad.CmpXattr("owner", rados.CmpEQ, []byte("someone else"))
	bad.WriteFull([]byte("must not land"))
	if err := bad.Operate(ctx, io, o); !errors.Is(err, syscall.ECANCELED) {
		t.Fatalf("failed cmpxattr: %v", err)
	}
	r := rados.NewReadOp()
	r.AssertVersion(ver)
	data := r.Read(0, 0)
	st := r.Stat()
	xa := r.GetXattrs()
	om := r.GetOmapValues("", "", 10)
	keys := r.GetOmapKeys("k1", 10)
	hdr := r.GetOmapHeader()
	byKey := r.GetOmapValuesByKeys("k2", "nope")
	must(r.Operate(ctx, io, o))
	if string(data.Data) != "whole" || st.Size != 5 || string(xa.Vals["owner"]) != "me" ||
		len(om.Vals) != 2 || om.More || !slices.Equal(keys.Keys, []string{"k2"}) ||
		string(hdr.Data) != "hdr" || len(byKey.Vals) != 1 || string(byKey.Vals["k2"]) != "v2" {
		t.Fatalf("read op: data %q stat %+v xattrs %v omap %v keys %v hdr %q bykey %v",
			data.Data, st, xa.Vals, om.Vals, keys.Keys, hdr.Data, byKey.Vals)
	}
	r = rados.NewReadOp()
	r.AssertVersion(ver + 3)
	r.Read(0, 0)
	if err := r.Operate(ctx, io, o); !errors.Is(err, syscall.EOVERFLOW) {
		t.Fatalf("assert of a newer version: %v", err)
	}
	rm := rados.NewWriteOp()
	rm.Remove()
	must(rm.Operate(ctx, io, o))
	if err := io.Remove(ctx, o); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("second remove: %v", err)
	}
}

// TestIntegrationXattrOmapCLI: xattrs and omap written by one side and
// read by the other.
func TestIntegrationXattrOmapCLI(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 2*time.Minute)
			o := oname("attrs")
			if err := e.io.Create(ctx, o, true); err != nil {
				t.Fatal(err)
			}
			defer e.io.Remove(ctx, o)
			if err := e.io.SetXattr(ctx, o, "ours", []byte("value-1")); err != nil {
				t.Fatal(err)
			}
			if out := e.rados(t, "getxattr", o, "ours"); string(out) != "value-1" {
				t.Errorf("rados getxattr: %q", out)
			}
			e.rados(t, "setxattr", o, "theirs", "value-2")
			if v, err := e.io.GetXattr(ctx, o, "theirs"); err != nil || string(v) != "value-2" {
				t.Errorf("getxattr: %q %v", v, err)
			}
			all, err := e.io.ListXattrs(ctx, o)
			if err != nil || len(all) != 2 {
				t.Errorf("listxattrs: %v %v", all, err)
			}
			if err := e.io.RmXattr(ctx, o, "theirs"); err != nil {
				t.Fatal(err)
			}
			if _, err := e.io.GetXattr(ctx, o, "theirs"); !errors.Is(err, syscall.ENODATA) {
				t.Errorf("removed xattr: %v", err)
			}
			if out := string(e.rados(t, "listxattr", o)); strings.TrimSpace(out) != "ours" {
				t.Errorf("rados listxattr: %q", out)
			}

			kv := map[string][]byte{}
			for i := range 1200 {
				kv[fmt.Sprintf("key-%04d", i)] = []byte(fmt.Sprintf("val-%d", i))
			}
			if err := e.io.SetOmap(ctx, o, kv); err != nil {
				t.Fatal(err)
			}
			if out := e.rados(t, "getomapval", o, "key-0042", "-"); string(out) != "val-42" {
				t.Errorf("rados getomapval: %q", out)
			}
			if n := strings.Count(string(e.rados(t, "listomapkeys", o)), "\n"); n != 1200 {
				t.Errorf("rados listomapkeys: %d keys", n)
			}
			e.rados(t, "setomapval", o, "cli-key", "cli-val")
			got, err := e.io.GetAllOmapValues(ctx, o, "")
			if err != nil || len(got) != 1201 || string(got["cli-key"]) != "cli-val" || string(got["key-1199"]) != "val-1199" {
				t.Fatalf("all omap values: %d %v", len(got), err)
			}
			if got, err := e.io.GetAllOmapValues(ctx, o, "key-11"); err != nil || len(got) != 100 {
				t.Fatalf("omap prefix: %d %v", len(got), err)
			}
			if err := e.io.RmOmapKeys(ctx, o, "cli-key", "key-0000"); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(e.rados(t, "listomapkeys", o)), "\n"); n != 1199 {
				t.Errorf("after rm: %d keys", n)
			}
			if err := e.io.CleanOmap(ctx, o); err != nil {
				t.Fatal(err)
			}
			if out := e.rados(t, "listomapkeys", o); len(out) != 0 {
				t.Errorf("after clear: %q", out)
			}
		})
	}
}

// TestIntegrationListNamespaces lists per namespace and across all of
// them, and compares with `rados ls`.
func TestIntegrationListNamespaces(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 2*time.Minute)
			tag := oname("ns")
			nss := []string{tag + "-a", tag + "-b"}
			want := map[string][]string{}
			for i, ns := range nss {
				io := e.io.Clone()
				io.SetNamespace(ns)
				for j := range 5 + 20*i {
					o := fmt.Sprintf("obj-%d", j)
					if err := io.WriteFull(ctx, o, []byte(o)); err != nil {
						t.Fatal(err)
					}
					want[ns] = append(want[ns], o)
				}
			}
			e.run(t, []byte("x"), "rados", "-p", e.pool, "-N", nss[0], "put", "cli-obj", "-")
			want[nss[0]] = append(want[nss[0]], "cli-obj")
			t.Cleanup(func() {
				for ns, objs := range want {
					io := e.io.Clone()
					io.SetNamespace(ns)
					for _, o := range objs {
						io.Remove(context.Background(), o)
					}
				}
			})
			for _, ns := range nss {
				io := e.io.Clone()
				io.SetNamespace(ns)
				var got []string
				if err := io.ListObjects(ctx, func(le rados.ListEntry) error {
					if le.Namespace != ns {
						t.Errorf("entry %+v in namespace %q", le, ns)
					}
					got = append(got, le.Oid)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				w := slices.Sorted(slices.Values(want[ns]))
				if !slices.Equal(got, w) {
					t.Errorf("namespace %s: got %v, want %v", ns, got, w)
				}
				cli := strings.Fields(string(e.run(t, nil, "rados", "-p", e.pool, "-N", ns, "ls")))
				slices.Sort(cli)
				if !slices.Equal(cli, got) {
					t.Errorf("namespace %s: rados ls %v, ours %v", ns, cli, got)
				}
			}
			// All namespaces: ours must have every entry of ours above, and
			// agree with rados ls --all on the whole pool.
			all := e.io.Clone()
			all.SetNamespace(rados.AllNamespaces)
			var ours []string
			if err := all.ListObjects(ctx, func(le rados.ListEntry) error {
				ours = append(ours, le.Namespace+"\t"+le.Oid)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			slices.Sort(ours)
			for ns, objs := range want {
				for _, o := range objs {
					if _, ok := slices.BinarySearch(ours, ns+"\t"+o); !ok {
						t.Errorf("all namespaces: %s/%s missing", ns, o)
					}
				}
			}
			// Stopping early returns fn's error.
			stop := errors.New("stop")
			if err := all.ListObjects(ctx, func(rados.ListEntry) error { return stop }); !errors.Is(err, stop) {
				t.Errorf("stop: %v", err)
			}
		})
	}
}

// clsLockLock encodes cls_lock_lock_op (v1): name, type (1 exclusive),
// cookie, tag, description, utime duration, flags.
func clsLockLock(name, cookie, tag, desc string) []byte {
	var b []byte
	put32 := func(v uint32) { b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	str := func(s string) { put32(uint32(len(s))); b = append(b, s...) }
	b = append(b, 1, 1, 0, 0, 0, 0)
	str(name)
	b = append(b, 1)
	str(cookie)
	str(tag)
	str(desc)
	put32(0)
	put32(0)
	b = append(b, 0)
	n := uint32(len(b) - 6)
	b[2], b[3], b[4], b[5] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return b
}

// TestIntegrationClsLock takes a cls_lock lock with a compound write and
// checks it with `rados lock info`; a second locker gets EBUSY.
func TestIntegrationClsLock(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, time.Minute)
			o := oname("lock")
			w := rados.NewWriteOp()
			w.Create(false)
			w.Exec("lock", "lock", clsLockLock("mylock", "cookie-1", "tag1", "held by rados tests"))
			if err := w.Operate(ctx, e.io, o); err != nil {
				t.Fatal(err)
			}
			defer e.io.Remove(ctx, o)
			info := string(e.rados(t, "lock", "info", o, "mylock"))
			if !strings.Contains(info, "cookie-1") || !strings.Contains(info, fmt.Sprintf("client.%d", e.conn.GlobalID())) ||
				!strings.Contains(info, "held by rados tests") {
				t.Errorf("rados lock info: %s", info)
			}
			w = rados.NewWriteOp()
			w.Exec("lock", "lock", clsLockLock("mylock", "cookie-2", "tag1", ""))
			if err := w.Operate(ctx, e.io, o); !errors.Is(err, syscall.EBUSY) {
				t.Errorf("second lock: %v, want EBUSY", err)
			}
			// A read-only method through Exec: get_info answers.
			out, err := e.io.Exec(ctx, o, "lock", "list_locks", nil)
			if err != nil || !bytes.Contains(out, []byte("mylock")) {
				t.Errorf("list_locks: %q %v", out, err)
			}
			if _, err := e.io.Exec(ctx, o, "lock", "no_such_method", nil); err == nil {
				t.Error("unknown method succeeded")
			}
		})
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestIntegrationWatchNotify: our watch receives `rados notify`; our
// notify reaches `rados watch`.
func TestIntegrationWatchNotify(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 2*time.Minute)
			io := e.io.Clone()
			io.SetNamespace("watch-ns")
			o := oname("watch")
			if err := io.Create(ctx, o, false); err != nil {
				t.Fatal(err)
			}
			defer io.Remove(ctx, o)
			got := make(chan rados.NotifyEvent, 4)
			w, err := io.Watch(ctx, o, func(ev rados.NotifyEvent) []byte {
				got <- ev
				return []byte("pong")
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ws, err := io.ListWatchers(ctx, o)
			if err != nil || len(ws) != 1 || ws[0].Cookie != w.Cookie() {
				t.Fatalf("list watchers: %+v %v", ws, err)
			}
			e.run(t, nil, "rados", "-p", e.pool, "-N", "watch-ns", "notify", o, "hello-from-cli")
			select {
			case ev := <-got:
				if !bytes.Contains(ev.Payload, []byte("hello-from-cli")) {
					t.Errorf("payload %q", ev.Payload)
				}
			case <-ctx.Done():
				t.Fatal("no notify delivered")
			}
			res, err := io.Notify(ctx, o, []byte("ours"), 10*time.Second)
			if err != nil || len(res.Acks) != 1 || string(res.Acks[0].Reply) != "pong" {
				t.Fatalf("our notify: %+v %v", res, err)
			}
			<-got
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}

			cmd := e.tool("rados", "-p", e.pool, "-N", "watch-ns", "watch", o)
			var mu sync.Mutex
			var buf bytes.Buffer
			cmd.Stdout = lockedWriter{&mu, &buf}
			cmd.Stderr = lockedWriter{&mu, &buf}
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
			for {
				ws, err := io.ListWatchers(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				if len(ws) == 1 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("rados watch never registered: %q", buf.String())
				case <-time.After(100 * time.Millisecond):
				}
			}
			res, err = io.Notify(ctx, o, []byte("to-cli"), 10*time.Second)
			if err != nil || len(res.Acks) != 1 {
				t.Fatalf("notify to rados watch: %+v %v", res, err)
			}
			want := fmt.Sprintf("from %d", e.conn.GlobalID())
			for {
				mu.Lock()
				printed := buf.String()
				mu.Unlock()
				if strings.Contains(printed, "NOTIFY") && strings.Contains(printed, want) {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("rados watch printed %q", printed)
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
	}
}

// TestIntegrationPools creates a pool, follows the map (incrementals)
// until it appears, uses it and deletes it; a pool made by the ceph CLI
// shows up after WaitForLatestOSDMap.
func TestIntegrationPools(t *testing.T) {
	for _, name := range objClusters {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, name)
			ctx := tctx(t, 3*time.Minute)
			c := e.conn
			pool := oname("pool")
			if err := c.PoolCreate(ctx, pool, 8); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.PoolDelete(context.Background(), pool) })
			if err := c.ApplicationEnable(ctx, pool, "rados"); err != nil {
				t.Fatal(err)
			}
			info, err := c.GetPool(ctx, pool)
			if err != nil || info.PGNum != 8 || info.Application["rados"] == nil {
				t.Fatalf("pool info %+v %v", info, err)
			}
			if n, err := c.GetPoolByID(ctx, info.ID); err != nil || n != pool {
				t.Fatalf("by id: %q %v", n, err)
			}
			names, err := c.ListPools(ctx)
			if err != nil || !slices.Contains(names, pool) {
				t.Fatalf("list pools %v %v", names, err)
			}
			io, err := c.OpenIOContext(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			if err := io.WriteFull(ctx, "x", []byte("in the new pool")); err != nil {
				t.Fatal(err)
			}
			if out := e.run(t, nil, "rados", "-p", pool, "get", "x", "-"); string(out) != "in the new pool" {
				t.Errorf("rados get: %q", out)
			}
			if err := c.PoolDelete(ctx, pool); err != nil {
				t.Fatal(err)
			}
			if _, err := c.LookupPool(ctx, pool); !errors.Is(err, rados.ErrPoolNotFound) || !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("deleted pool: %v", err)
			}
			if err := io.WriteFull(ctx, "x", []byte("gone")); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("write to a deleted pool: %v", err)
			}
			if err := c.PoolDelete(ctx, pool); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("second delete: %v", err)
			}
			// A pool created behind our back.
			other := oname("cli")
			e.run(t, nil, "ceph", "osd", "pool", "create", other, "4")
			t.Cleanup(func() { c.PoolDelete(context.Background(), other) })
			if err := c.WaitForLatestOSDMap(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := c.LookupPool(ctx, other); err != nil {
				t.Fatalf("pool made by the CLI: %v", err)
			}
			if err := c.PoolDelete(ctx, other); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIntegrationPoolFull: a pool over its quota refuses writes with
// ENOSPC (not a hang) once the monitors flag it.
func TestIntegrationPoolFull(t *testing.T) {
	e := newEnv(t, "pacific")
	ctx := tctx(t, 3*time.Minute)
	c := e.conn
	pool := oname("full")
	if err := c.PoolCreate(ctx, pool, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.PoolDelete(context.Background(), pool) })
	e.run(t, nil, "ceph", "osd", "pool", "set-quota", pool, "max_bytes", "1048576")
	io, err := c.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 256<<10)
	var werr error
	for i := 0; ; i++ {
		// Each write is bounded: a full pool must answer, not stall.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		werr = io.WriteFull(wctx, fmt.Sprintf("fill-%d", i), data)
		cancel()
		if werr != nil {
			t.Logf("write %d: %v", i, werr)
			break
		}
		if i >= 8 {
			// Over the quota: wait for the monitors to notice.
			select {
			case <-ctx.Done():
				t.Fatal("the pool never became full")
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if !errors.Is(werr, syscall.ENOSPC) || !errors.Is(werr, rados.ErrPoolFull) {
		t.Fatalf("write to a full pool: %v, want ENOSPC", werr)
	}
	// Reads still work; deletes free space (Remove as librados does it,
	// and a WriteOp with FullTry).
	if _, err := io.Stat(ctx, "fill-0"); err != nil {
		t.Fatal(err)
	}
	if err := io.Remove(ctx, "fill-1"); err != nil {
		t.Fatalf("remove in a full pool: %v", err)
	}
	rm := rados.NewWriteOp()
	rm.SetFullTry()
	rm.Remove()
	if err := rm.Operate(ctx, io, "fill-0"); err != nil {
		t.Fatalf("delete in a full pool: %v", err)
	}
}
