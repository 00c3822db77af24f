package osd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
)

// clusters is the version matrix; GORBD_OSD_CLUSTERS (comma-separated)
// replaces it, e.g. to add pacific-secure or tentacle256.
var clusters = func() []string {
	if v := os.Getenv("GORBD_OSD_CLUSTERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"pacific", "reef", "tentacle"}
}()

func objName(t *testing.T, what string) string {
	return fmt.Sprintf("osdtest-%s-%d-%x", what, time.Now().UnixNano(), rand.Uint32())
}

// TestIntegrationPutGet writes objects of sizes 0 B .. 64 MiB with our
// client and reads them back with the rados CLI, and the other way round.
func TestIntegrationPutGet(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, name == "pacific")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			sizes := []int{0, 1, 4095, 4096, 1 << 20, 4<<20 + 7, 64 << 20}
			if testing.Short() {
				sizes = sizes[:5]
			}
			dir := t.TempDir()
			for _, size := range sizes {
				data := make([]byte, size)
				for i := range data {
					data[i] = byte(i*7 + size)
				}
				// ours -> rados get
				o := objName(t, fmt.Sprint(size))
				st.cleanup(t, "", o)
				req := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.WriteFull(data)}}
				if err := st.osd.Do(ctx, req); err != nil {
					t.Fatalf("writefull %d: %v", size, err)
				}
				f := filepath.Join(dir, "get")
				st.rados(t, nil, "-p", pool, "get", o, f)
				got, err := os.ReadFile(f)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("size %d: rados get returned %d bytes (err %v), differs", size, len(got), err)
				}
				// rados put -> ours
				o2 := objName(t, fmt.Sprint(size))
				st.cleanup(t, "", o2)
				in := filepath.Join(dir, "put")
				if err := os.WriteFile(in, data, 0o644); err != nil {
					t.Fatal(err)
				}
				st.rados(t, nil, "-p", pool, "put", o2, in)
				r := &osd.Request{Pool: st.pool, Object: o2, Ops: []osd.Op{osd.Stat(), osd.Read(0, uint64(size))}}
				if err := st.osd.Do(ctx, r); err != nil {
					t.Fatalf("read %d: %v", size, err)
				}
				sr, err := osd.ParseStat(r.Ops[0].Out)
				if err != nil || sr.Size != uint64(size) {
					t.Fatalf("stat %d: %+v %v", size, sr, err)
				}
				if !bytes.Equal(r.Ops[1].Out, data) {
					t.Fatalf("size %d: read %d bytes, differs", size, len(r.Ops[1].Out))
				}
				for _, x := range []string{o, o2} {
					if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: x, Ops: []osd.Op{osd.Delete()}}); err != nil {
						t.Fatalf("delete: %v", err)
					}
				}
			}
			// A missing object: ENOENT through errors.Is and OpError.
			err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: objName(t, "missing"), Ops: []osd.Op{osd.Read(0, 10)}})
			var oe *osd.OpError
			if !errors.Is(err, syscall.ENOENT) || !errors.As(err, &oe) || oe.Op != osd.OpRead {
				t.Fatalf("read of a missing object: %v", err)
			}
			// Exclusive create twice: EEXIST.
			o := objName(t, "excl")
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Create(true)}}); err != nil {
				t.Fatal(err)
			}
			err = st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Create(true)}})
			if !errors.Is(err, syscall.EEXIST) {
				t.Fatalf("second exclusive create: %v", err)
			}
			// Write / zero / truncate / sparse read.
			w := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{
				osd.SetAllocHint(4<<20, 4<<20, 0), osd.Write(8192, []byte("hello")), osd.Zero(8192, 2), osd.Truncate(8195)}}
			if err := st.osd.Do(ctx, w); err != nil {
				t.Fatal(err)
			}
			rr := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Read(0, 0), osd.SparseRead(0, 1<<20)}}
			if err := st.osd.Do(ctx, rr); err != nil {
				t.Fatal(err)
			}
			want := append(make([]byte, 8194), 'l')
			if !bytes.Equal(rr.Ops[0].Out, want) {
				t.Fatalf("read after write/zero/truncate: %d bytes %q", len(rr.Ops[0].Out), rr.Ops[0].Out[8190:])
			}
			ext, sdata, err := osd.ParseSparseRead(rr.Ops[1].Out)
			if err != nil || len(ext) == 0 {
				t.Fatalf("sparse read: %v %v", ext, err)
			}
			t.Logf("sparse read extents %v (%d bytes)", ext, len(sdata))
			// Assert version: the current one passes, a wrong one fails.
			ver := rr.Version
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.AssertVersion(ver), osd.Stat()}}); err != nil {
				t.Fatalf("assert version %d: %v", ver, err)
			}
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.AssertVersion(ver + 5)}}); err == nil {
				t.Fatal("assert of a wrong version succeeded")
			}
			st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
			st.writeCaptures(t, name)
		})
	}
}

// TestIntegrationXattrOmap checks xattrs and omap against the CLI.
func TestIntegrationXattrOmap(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, name == "pacific")
			defer st.writeCaptures(t, name+"-kv")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			o := objName(t, "kv")
			req := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{
				osd.Create(false),
				osd.SetXattr("color", []byte("blue")),
				osd.SetXattr("size", []byte("42")),
				osd.OmapSetHeader([]byte("hdr")),
				osd.OmapSet(map[string][]byte{"a": []byte("1"), "b": []byte("22"), "pre.x": []byte("x"), "pre.y": nil}),
			}}
			if err := st.osd.Do(ctx, req); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(st.rados(t, nil, "-p", pool, "getxattr", o, "color"))); got != "blue" {
				t.Errorf("rados getxattr color = %q", got)
			}
			if got := string(st.rados(t, nil, "-p", pool, "getomapval", o, "b", "/dev/stdout")); !strings.Contains(got, "22") {
				t.Errorf("rados getomapval b = %q", got)
			}
			st.rados(t, nil, "-p", pool, "setomapval", o, "c", "333")
			st.rados(t, nil, "-p", pool, "setxattr", o, "cli", "yes")

			rd := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{
				osd.GetXattr("cli"), osd.GetXattrs(),
				osd.OmapGetKeys("", 100), osd.OmapGetVals("", "pre.", 100),
				osd.OmapGetValsByKeys("c", "nope", "a"), osd.OmapGetHeader(),
				osd.CmpXattr("color", osd.CmpEQ, []byte("blue")),
				osd.OmapCmp(map[string]osd.OmapAssertion{"a": {Value: []byte("1"), Op: osd.CmpEQ}}),
			}}
			if err := st.osd.Do(ctx, rd); err != nil {
				t.Fatal(err)
			}
			if string(rd.Ops[0].Out) != "yes" {
				t.Errorf("getxattr cli = %q", rd.Ops[0].Out)
			}
			xs, err := osd.ParseXattrs(rd.Ops[1].Out)
			if err != nil || string(xs["color"]) != "blue" || string(xs["size"]) != "42" {
				t.Errorf("getxattrs = %q %v", xs, err)
			}
			keys, more, err := osd.ParseOmapKeys(rd.Ops[2].Out)
			if err != nil || more || !slices.Equal(keys, []string{"a", "b", "c", "pre.x", "pre.y"}) {
				t.Errorf("omap keys = %q more %v %v", keys, more, err)
			}
			vals, _, err := osd.ParseOmapVals(rd.Ops[3].Out)
			if err != nil || len(vals) != 2 || string(vals["pre.x"]) != "x" {
				t.Errorf("omap vals with prefix = %q %v", vals, err)
			}
			byk, err := osd.ParseOmapValsByKeys(rd.Ops[4].Out)
			if err != nil || len(byk) != 2 || string(byk["c"]) != "333" || string(byk["a"]) != "1" {
				t.Errorf("omap vals by keys = %q %v", byk, err)
			}
			if string(rd.Ops[5].Out) != "hdr" {
				t.Errorf("omap header = %q", rd.Ops[5].Out)
			}
			// Failing comparisons: ECANCELED.
			err = st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.CmpXattr("color", osd.CmpEQ, []byte("red"))}})
			if !errors.Is(err, syscall.ECANCELED) {
				t.Errorf("cmpxattr mismatch: %v", err)
			}
			// Paging with max.
			pg := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.OmapGetVals("a", "", 2)}}
			if err := st.osd.Do(ctx, pg); err != nil {
				t.Fatal(err)
			}
			if v, more, _ := osd.ParseOmapVals(pg.Ops[0].Out); len(v) != 2 || !more {
				t.Errorf("paged omap vals: %d more %v", len(v), more)
			}
			// Removal.
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.RmXattr("size"), osd.OmapRmKeys("a", "b")}}); err != nil {
				t.Fatal(err)
			}
			if got := string(st.rados(t, nil, "-p", pool, "listomapkeys", o)); got != "c\npre.x\npre.y\n" {
				t.Errorf("listomapkeys after rm = %q", got)
			}
			err = st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.GetXattr("size")}})
			if !errors.Is(err, syscall.ENODATA) {
				t.Errorf("getxattr of a removed attr: %v", err)
			}
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.OmapClear()}}); err != nil {
				t.Fatal(err)
			}
			if got := st.rados(t, nil, "-p", pool, "listomapkeys", o); len(got) != 0 {
				t.Errorf("omap after clear: %q", got)
			}
			st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
		})
	}
}

// TestIntegrationList lists objects per namespace and compares with the CLI.
func TestIntegrationList(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, name == "pacific")
			defer st.writeCaptures(t, name+"-list")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			ns := fmt.Sprintf("ns%x", rand.Uint32())
			var want []string
			for i := range 40 {
				o := fmt.Sprintf("obj-%03d", i)
				want = append(want, o)
				if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Namespace: ns, Object: o, Ops: []osd.Op{osd.WriteFull([]byte(o))}}); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			err := st.osd.List(ctx, st.pool, ns, func(e osd.ListEntry) error {
				if e.Namespace != ns {
					t.Errorf("entry in namespace %q", e.Namespace)
				}
				got = append(got, e.Oid)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("listed %d objects %q, want %d", len(got), got, len(want))
			}
			cli := strings.Fields(string(st.rados(t, nil, "-p", pool, "-N", ns, "ls")))
			slices.Sort(cli)
			if !slices.Equal(cli, want) {
				t.Fatalf("rados ls -N %s: %q", ns, cli)
			}
			// All namespaces include ours.
			seen := 0
			err = st.osd.List(ctx, st.pool, osd.AllNamespaces, func(e osd.ListEntry) error {
				if e.Namespace == ns {
					seen++
				}
				return nil
			})
			if err != nil || seen != len(want) {
				t.Fatalf("all-namespace listing saw %d of ours (%v)", seen, err)
			}
			for _, o := range want {
				st.osd.Do(ctx, &osd.Request{Pool: st.pool, Namespace: ns, Object: o, Ops: []osd.Op{osd.Delete()}})
			}
		})
	}
}

// TestIntegrationClsLock takes a cls_lock lock and checks it with
// `rados lock info`.
func TestIntegrationClsLock(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, name == "pacific")
			defer st.writeCaptures(t, name+"-cls")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			o := objName(t, "lock")
			// cls_lock_lock_op v1: name, u8 type (1 exclusive), cookie,
			// tag, description, utime duration, u8 flags.
			in := clsLockLock("mylock", "cookie-1", "tag1", "held by osd tests")
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.CallWrite("lock", "lock", in)}}); err != nil {
				t.Fatal(err)
			}
			info := string(st.rados(t, nil, "-p", pool, "lock", "info", o, "mylock"))
			if !strings.Contains(info, "cookie-1") || !strings.Contains(info, "tag1") {
				t.Fatalf("rados lock info: %s", info)
			}
			// Locking again with another cookie: EBUSY.
			err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.CallWrite("lock", "lock", clsLockLock("mylock", "cookie-2", "tag1", ""))}})
			if !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.EEXIST) {
				t.Fatalf("second lock: %v", err)
			}
			// Unknown class method: EOPNOTSUPP.
			err = st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Call("lock", "no_such_method", nil)}})
			if err == nil {
				t.Fatal("unknown cls method succeeded")
			}
			st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
		})
	}
}

func clsLockLock(name, cookie, tag, desc string) []byte {
	var b []byte
	put32 := func(v uint32) { b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	str := func(s string) { put32(uint32(len(s))); b = append(b, s...) }
	b = append(b, 1, 1, 0, 0, 0, 0) // struct v1 compat 1, len patched below
	str(name)
	b = append(b, 1) // LOCK_EXCLUSIVE
	str(cookie)
	str(tag)
	str(desc)
	put32(0) // duration sec
	put32(0) // duration nsec
	b = append(b, 0)
	n := uint32(len(b) - 6)
	b[2], b[3], b[4], b[5] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return b
}

// TestIntegrationWatchNotify watches an object, notifies it with `rados
// notify`, then watches with `rados watch` and notifies from us.
func TestIntegrationWatchNotify(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, name == "pacific")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			o := objName(t, "watch")
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Create(false)}}); err != nil {
				t.Fatal(err)
			}
			got := make(chan osd.NotifyEvent, 4)
			w, err := st.osd.Watch(ctx, st.pool, "", o, func(ev osd.NotifyEvent) []byte {
				got <- ev
				return []byte("pong")
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// list-watchers shows us.
			lw := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.ListWatchers()}}
			if err := st.osd.Do(ctx, lw); err != nil {
				t.Fatal(err)
			}
			ws, err := osd.ParseListWatchers(lw.Ops[0].Out)
			if err != nil || len(ws) != 1 || ws[0].Cookie != w.Cookie() {
				t.Fatalf("list-watchers: %+v %v", ws, err)
			}
			if out := string(st.rados(t, nil, "-p", pool, "listwatchers", o)); !strings.Contains(out, fmt.Sprintf("cookie=%d", w.Cookie())) {
				t.Errorf("rados listwatchers: %s", out)
			}
			out := st.rados(t, nil, "-p", pool, "notify", o, "hello-from-cli")
			select {
			case ev := <-got:
				if string(ev.Payload) != "hello-from-cli" {
					// rados notify encodes the message as a string.
					if !bytes.Contains(ev.Payload, []byte("hello-from-cli")) {
						t.Errorf("notify payload %q", ev.Payload)
					}
				}
			case <-ctx.Done():
				t.Fatal("no notify delivered")
			}
			t.Logf("rados notify: %s", out)

			// Our notify, with our own watch answering.
			res, err := st.osd.Notify(ctx, st.pool, "", o, []byte("ours"), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Acks) != 1 || string(res.Acks[0].Reply) != "pong" || res.Acks[0].Cookie != w.Cookie() {
				t.Fatalf("notify result %+v", res)
			}
			<-got
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}

			// rados watch in the background, then our notify reaches it.
			cmd := st.radosCmd("-p", pool, "watch", o)
			var mu sync.Mutex
			var buf bytes.Buffer
			cmd.Stdout = lockedWriter{&mu, &buf}
			cmd.Stderr = lockedWriter{&mu, &buf}
			// rados watch exits when its stdin ends: keep it open.
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
			deadline := time.Now().Add(30 * time.Second)
			for {
				lw := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.ListWatchers()}}
				if err := st.osd.Do(ctx, lw); err != nil {
					t.Fatal(err)
				}
				ws, _ := osd.ParseListWatchers(lw.Ops[0].Out)
				if len(ws) == 1 {
					break
				}
				if time.Now().After(deadline) {
					mu.Lock()
					t.Fatalf("rados watch never registered: watchers %+v, output %q", ws, buf.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			res, err = st.osd.Notify(ctx, st.pool, "", o, []byte("to-cli"), 10*time.Second)
			if err != nil || len(res.Acks) != 1 {
				t.Fatalf("notify to rados watch: %+v %v", res, err)
			}
			time.Sleep(200 * time.Millisecond)
			mu.Lock()
			printed := buf.String()
			mu.Unlock()
			// rados watch prints the notifier's global id, not the payload.
			if !strings.Contains(printed, "NOTIFY cookie") || !strings.Contains(printed, fmt.Sprintf("from %d", st.mon.GlobalID())) {
				t.Errorf("rados watch printed %q", printed)
			}
			st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
			st.writeCaptures(t, name+"-watch")
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

// TestIntegrationReconnect breaks the OSD connections under a watch and
// an in-flight workload: requests complete after the redial, and the
// watch is re-registered so a `rados notify` still reaches it.
func TestIntegrationReconnect(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, false)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pool := st.cl.Get("CEPH_POOL")
			o := objName(t, "reconnect")
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Create(false)}}); err != nil {
				t.Fatal(err)
			}
			got := make(chan osd.NotifyEvent, 4)
			lost := make(chan error, 4)
			w, err := st.osd.Watch(ctx, st.pool, "", o, func(ev osd.NotifyEvent) []byte {
				got <- ev
				return nil
			}, func(err error) { lost <- err })
			if err != nil {
				t.Fatal(err)
			}
			// Writes in flight while the connections break.
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for i := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := bytes.Repeat([]byte{byte(i)}, 64<<10)
					errs <- st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: fmt.Sprintf("%s-%d", o, i), Ops: []osd.Op{osd.WriteFull(data)}})
				}()
			}
			if n := st.faultAll(); n == 0 {
				t.Fatal("no connection to break")
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("write across a reconnect: %v", err)
				}
			}
			// The watch is re-registered on the new connection.
			deadline := time.Now().Add(30 * time.Second)
			for {
				st.rados(t, nil, "-p", pool, "notify", o, "after-fault")
				select {
				case <-got:
				case <-time.After(2 * time.Second):
					if time.Now().After(deadline) {
						t.Fatal("notify not delivered after the reconnect")
					}
					continue
				}
				break
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 32 {
				st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: fmt.Sprintf("%s-%d", o, i), Ops: []osd.Op{osd.Delete()}})
			}
			st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Delete()}})
			select {
			case err := <-lost:
				t.Logf("watch reported %v (re-established)", err)
			default:
			}
		})
	}
}

// TestIntegrationQuota fills a pool's object quota: writes then fail
// promptly with EDQUOT (the client sees the pool's FULL_QUOTA flag in the
// map) instead of hanging, while reads still work.
func TestIntegrationQuota(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, false)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			pname := fmt.Sprintf("osdtest-quota-%x", rand.Uint32())
			st.ceph(t, "osd", "pool", "create", pname, "8")
			t.Cleanup(func() { st.ceph(t, "osd", "pool", "rm", pname, pname, "--yes-i-really-really-mean-it") })
			st.ceph(t, "osd", "pool", "set-quota", pname, "max_objects", "2")
			var pool int64
			for {
				// This stack's map feed is minimal (full maps only, re-asked
				// on each incremental): ask again every few seconds rather
				// than depend on one notification under a loaded machine.
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				werr := st.osd.WaitForMap(wctx, st.osd.Map().Epoch+1)
				wcancel()
				if id, ok := st.osd.Map().PoolByName(pname); ok {
					pool = id
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("pool %s never appeared in the osdmap (epoch %d): %v", pname, st.osd.Map().Epoch, werr)
				}
				go st.mon.SubscribeOSDMap(ctx, 0)
			}
			var quotaErr error
			for i := 0; ; i++ {
				if ctx.Err() != nil {
					t.Fatal("quota never enforced")
				}
				wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
				err := st.osd.Do(wctx, &osd.Request{Pool: pool, Object: fmt.Sprint("o", i), Ops: []osd.Op{osd.WriteFull([]byte("x"))}})
				wcancel()
				if errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("write %d hung: %v", i, err)
				}
				if err != nil {
					quotaErr = err
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !errors.Is(quotaErr, syscall.EDQUOT) {
				t.Fatalf("write over quota: %v", quotaErr)
			}
			r := &osd.Request{Pool: pool, Object: "o0", Ops: []osd.Op{osd.Read(0, 0)}}
			if err := st.osd.Do(ctx, r); err != nil || string(r.Ops[0].Out) != "x" {
				t.Fatalf("read in a pool over quota: %q %v", r.Ops[0].Out, err)
			}
			start := time.Now()
			err := st.osd.Do(ctx, &osd.Request{Pool: pool, Object: "again", Ops: []osd.Op{osd.WriteFull([]byte("y"))}})
			if !errors.Is(err, syscall.EDQUOT) {
				t.Fatalf("second write over quota: %v", err)
			}
			t.Logf("over-quota write failed in %v: %v", time.Since(start), err)
		})
	}
}

// TestIntegrationSnapshots writes with a self-managed snap context and
// reads the snapshot back by snap id: the OSD cloned the object.
func TestIntegrationSnapshots(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, name, false)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := objName(t, "snap")
			st.cleanup(t, "", o)
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.WriteFull([]byte("before"))}}); err != nil {
				t.Fatal(err)
			}
			rep, err := st.mon.PoolOp(ctx, mon.MPoolOp{Pool: uint32(st.pool), Op: mon.PoolOpCreateUnmanagedSnap})
			if err != nil {
				t.Fatal(err)
			}
			snap, ok := rep.SnapID()
			if !ok {
				t.Fatalf("no snap id in %+v", rep)
			}
			t.Cleanup(func() {
				st.mon.PoolOp(context.Background(), mon.MPoolOp{Pool: uint32(st.pool), Op: mon.PoolOpDeleteUnmanagedSnap, SnapID: snap})
			})
			w := &osd.Request{Pool: st.pool, Object: o, SnapSeq: snap, Snaps: []uint64{snap}, Ops: []osd.Op{osd.WriteFull([]byte("after!"))}}
			if err := st.osd.Do(ctx, w); err != nil {
				t.Fatal(err)
			}
			head := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Read(0, 0)}}
			old := &osd.Request{Pool: st.pool, Object: o, SnapID: snap, Ops: []osd.Op{osd.Read(0, 0)}}
			for _, r := range []*osd.Request{head, old} {
				if err := st.osd.Do(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if string(head.Ops[0].Out) != "after!" || string(old.Ops[0].Out) != "before" {
				t.Fatalf("head %q, snap %d %q", head.Ops[0].Out, snap, old.Ops[0].Out)
			}
			// Without the snap context the OSD would not have cloned: an
			// older seq is refused with ORDERSNAP.
			ws := &osd.Request{Pool: st.pool, Object: o, SnapSeq: snap - 1, Flags: osd.FlagOrderSnap, Ops: []osd.Op{osd.WriteFull([]byte("z"))}}
			if err := st.osd.Do(ctx, ws); !errors.Is(err, syscall.Errno(85)) {
				t.Logf("write with an old snap context and ORDERSNAP: %v", err)
			}
		})
	}
}

// TestIntegrationSecureMode moves data over msgr2 secure mode (AES-GCM)
// connections to the OSDs.
func TestIntegrationSecureMode(t *testing.T) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) {
			st := newStackModes(t, name, false, messenger.ModeSecure)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := objName(t, "secure")
			st.cleanup(t, "", o)
			data := make([]byte, 8<<20+3)
			for i := range data {
				data[i] = byte(i * 13)
			}
			if err := st.osd.Do(ctx, &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.WriteFull(data)}}); err != nil {
				t.Fatal(err)
			}
			r := &osd.Request{Pool: st.pool, Object: o, Ops: []osd.Op{osd.Read(0, 0)}}
			if err := st.osd.Do(ctx, r); err != nil || !bytes.Equal(r.Ops[0].Out, data) {
				t.Fatalf("secure read back: %d bytes, %v", len(r.Ops[0].Out), err)
			}
			st.connMu.Lock()
			defer st.connMu.Unlock()
			if len(st.conns) == 0 {
				t.Fatal("no OSD connection recorded")
			}
			for _, f := range st.conns {
				if mc, ok := f.c.(interface{ Peer() messenger.PeerInfo }); ok && mc.Peer().ConMode != messenger.ModeSecure {
					t.Fatalf("connection mode %d, want secure", mc.Peer().ConMode)
				}
			}
		})
	}
}
