package rbdbackend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Integration tests against the real clusters: our NBD server serves an
// image made by the cluster's own `rbd` CLI, standard NBD clients (libnbd's
// nbdinfo/nbdcopy, qemu-io/qemu-img, fio's nbd engine) drive it, and the
// `rbd` CLI (export/import) is the oracle for what landed in RADOS.

var clusters = []string{"pacific", "reef", "tentacle"}

const imgSize = 16 << 20

type env struct {
	cl   *cephtest.Cluster
	conn *rados.Conn
	pool string
	dir  string // short, for unix sockets; reachable from the CLI chroot (/tmp)
}

func needTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			cephtest.Missing(t, "%s not installed (test/deps.sh)", n)
		}
	}
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
	dir, err := os.MkdirTemp("", "rbdnbd")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &env{cl: cl, conn: conn, pool: cl.Get("CEPH_POOL"), dir: dir}
}

func (e *env) rbdArgs(args []string) []string {
	full := append([]string{"rbd", "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "-p", e.pool}, args...)
	if cli := e.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	return full
}

func (e *env) rbd(t *testing.T, args ...string) []byte {
	t.Helper()
	full := e.rbdArgs(args)
	cmd := exec.Command(full[0], full[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rbd %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// newImage creates an image with `rbd create` and removes it (snapshots
// included) when the test ends.
func (e *env) newImage(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("rbdnbd-%d", time.Now().UnixNano())
	e.rbd(t, "create", "--size", fmt.Sprint(imgSize>>20)+"M", name)
	e.removeLater(t, name)
	return name
}

func (e *env) removeLater(t *testing.T, name string) {
	t.Cleanup(func() {
		for _, args := range [][]string{{"snap", "purge", "--no-progress", name}, {"rm", "--no-progress", name}} {
			full := e.rbdArgs(args)
			if out, err := exec.Command(full[0], full[1:]...).CombinedOutput(); err != nil {
				t.Logf("cleanup rbd %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})
}

// serve opens spec with our client and serves it in-process on a unix
// socket; it returns the NBD URI. The server and the image are closed
// before the image is removed (cleanups run last-in first-out).
func (e *env) serve(t *testing.T, spec string, readOnly bool) (string, *Backend) {
	return e.serveWith(t, spec, readOnly, nil)
}

// serveWith is serve with setup run on the backend before it is served
// (EnableQoS, EnableQuiesce); the export gets what ConfigureExport sets.
func (e *env) serveWith(t *testing.T, spec string, readOnly bool, setup func(*Backend)) (string, *Backend) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, e.conn, e.pool+"/"+spec, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(b)
	}
	srv := &nbd.Server{}
	exp := &nbd.Export{Backend: b, ReadOnly: b.ReadOnly(), Description: b.Description()}
	b.ConfigureExport(exp)
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.dir, fmt.Sprintf("s%d.sock", time.Now().UnixNano()%1e9))
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	t.Cleanup(func() {
		stop()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("closing image: %v", err)
		}
	})
	return "nbd+unix:///?socket=" + sock, b
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func randomFile(t *testing.T, dir string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(dir, fmt.Sprintf("rand%d", time.Now().UnixNano()))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func (e *env) export(t *testing.T, spec string) (string, []byte) {
	t.Helper()
	p := filepath.Join(e.dir, fmt.Sprintf("export%d", time.Now().UnixNano()))
	e.rbd(t, "export", "--no-progress", spec, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func forClusters(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, name := range clusters {
		t.Run(name, func(t *testing.T) { fn(t, newEnv(t, name)) })
	}
}

func TestNBDInfo(t *testing.T) {
	needTool(t, "nbdinfo")
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		uri, _ := e.serve(t, img, false)
		var info struct {
			Exports []struct {
				Size      int64  `json:"export-size"`
				Desc      string `json:"description"`
				ReadOnly  bool   `json:"is_read_only"`
				Flush     bool   `json:"can_flush"`
				FUA       bool   `json:"can_fua"`
				Trim      bool   `json:"can_trim"`
				Zero      bool   `json:"can_zero"`
				FastZero  bool   `json:"can_fast_zero"`
				MultiConn bool   `json:"can_multi_conn"`
				MinBlock  uint32 `json:"block_size_minimum"`
				PrefBlock uint32 `json:"block_size_preferred"`
				MaxBlock  uint32 `json:"block_size_maximum"`
			} `json:"exports"`
		}
		out := run(t, "nbdinfo", "--json", uri)
		if err := json.Unmarshal(out, &info); err != nil || len(info.Exports) != 1 {
			t.Fatalf("nbdinfo --json: %v\n%s", err, out)
		}
		x := info.Exports[0]
		if x.Size != imgSize {
			t.Errorf("export-size %d, want %d", x.Size, imgSize)
		}
		if x.ReadOnly || !x.Flush || !x.FUA || !x.Trim || !x.Zero || !x.FastZero || !x.MultiConn {
			t.Errorf("flags %+v: want writable with flush, fua, trim, zero, fast zero and multi-conn", x)
		}
		if x.MinBlock == 0 || x.PrefBlock < x.MinBlock || x.MaxBlock < x.PrefBlock {
			t.Errorf("block sizes min %d pref %d max %d", x.MinBlock, x.PrefBlock, x.MaxBlock)
		}
		if !strings.Contains(x.Desc, img) {
			t.Errorf("description %q does not name %s", x.Desc, img)
		}
	})
}

// TestNBDCopy: nbdcopy random data in → `rbd export` identical; `rbd
// import` → nbdcopy out identical.
func TestNBDCopy(t *testing.T) {
	needTool(t, "nbdcopy")
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		uri, _ := e.serve(t, img, false)
		src, want := randomFile(t, e.dir, imgSize)
		run(t, "nbdcopy", "--flush", src, uri)
		if _, got := e.export(t, img); !bytes.Equal(got, want) {
			t.Errorf("rbd export after nbdcopy in differs")
		}

		src2, want2 := randomFile(t, e.dir, imgSize)
		img2 := fmt.Sprintf("rbdnbd-imp-%d", time.Now().UnixNano())
		e.rbd(t, "import", "--no-progress", src2, img2)
		e.removeLater(t, img2)
		uri2, _ := e.serve(t, img2, false)
		dst := filepath.Join(e.dir, "out")
		run(t, "nbdcopy", uri2, dst)
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, want2) {
			t.Errorf("nbdcopy out of an rbd-imported image differs (%v)", err)
		}
	})
}

// TestQemuIO writes, discards and zeroes through qemu's NBD client with
// pattern checks, then compares the whole device with `rbd export`.
func TestQemuIO(t *testing.T) {
	needTool(t, "qemu-io", "qemu-img")
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		uri, _ := e.serve(t, img, false)
		cmds := []string{
			"write -P 0xab 0 6M",       // spans two 4 MiB objects
			"write -P 0xcd -f 1M 512k", // FUA
			"write -P 0x11 10M 5M",
			"flush",
			"discard 4M 4M",        // one whole object
			"discard 2M 512k",      // part of one
			"write -z 11M 1M",      // may punch
			"write -z -u 13M 4096", // may unmap
			"write -P 0x22 15M 4096",
			"read -P 0xab 0 1M",
			"read -P 0xcd 1M 512k",
			"read -P 0xab 1536k 512k",
			"read -P 0 2M 512k",
			"read -P 0xab 2560k 1536k",
			"read -P 0 4M 6M",
			"read -P 0x11 10M 1M",
			"read -P 0 11M 1M",
			"read -P 0x11 12M 1M",
			"read -P 0 13M 4096",
			"read -P 0x11 13635584 2093056",
			"read -P 0x22 15M 4096",
			"read -P 0 15732736 1044480",
		}
		args := []string{"-f", "raw"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		out := run(t, "qemu-io", append(args, uri)...)
		if bytes.Contains(out, []byte("failed")) || bytes.Contains(out, []byte("error")) || bytes.Contains(out, []byte("invalid")) {
			t.Fatalf("qemu-io:\n%s", out)
		}
		want := make([]byte, imgSize)
		fill := func(v byte, off, n int) {
			for i := off; i < off+n; i++ {
				want[i] = v
			}
		}
		const M = 1 << 20
		fill(0xab, 0, 6*M)
		fill(0xcd, M, M/2)
		fill(0x11, 10*M, 5*M)
		fill(0, 4*M, 4*M)
		fill(0, 2*M, M/2)
		fill(0, 11*M, M)
		fill(0, 13*M, 4096)
		fill(0x22, 15*M, 4096)
		exp, got := e.export(t, img)
		if !bytes.Equal(got, want) {
			t.Errorf("rbd export differs from what qemu-io wrote")
		}
		run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", exp, uri)

		// qemu-img compare must be able to fail.
		run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x33 8M 4096", uri)
		cmd := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "raw", exp, uri)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("qemu-img compare saw no difference after a write:\n%s", out)
		}
	})
}

// TestFio runs fio's nbd engine with crc32c verification, one and two
// connections.
func TestFio(t *testing.T) {
	needTool(t, "fio")
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		uri, _ := e.serve(t, img, false)
		for _, qd := range []string{"1", "32"} {
			for _, rw := range []string{"randwrite", "write"} {
				out := run(t, "fio", "--name=verify", "--ioengine=nbd", "--uri="+uri,
					"--rw="+rw, "--bsrange=4k-64k", "--iodepth="+qd, "--numjobs=2",
					"--size=4M", "--offset_increment=8M", "--verify=crc32c",
					"--do_verify=1", "--verify_fatal=1", "--group_reporting", "--output-format=terse")
				if len(out) == 0 {
					t.Errorf("fio %s qd %s: no output", rw, qd)
				}
			}
		}
		// fio's verification must be able to fail: data written, then
		// overwritten behind fio's back, then verify-only.
		run(t, "fio", "--name=w", "--ioengine=nbd", "--uri="+uri, "--rw=write", "--bs=64k",
			"--size=1M", "--verify=crc32c", "--do_verify=0", "--verify_state_save=0")
		run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x5a 128k 4096", uri)
		cmd := exec.Command("fio", "--name=w", "--ioengine=nbd", "--uri="+uri, "--rw=write", "--bs=64k",
			"--size=1M", "--verify=crc32c", "--verify_only", "--verify_state_load=0")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("fio verify_only passed over corrupted data:\n%s", out)
		}
	})
}

// TestSnapshotExport: IMAGE@SNAP is served read-only with the snapshot's
// data while the head moves on.
func TestSnapshotExport(t *testing.T) {
	needTool(t, "nbdinfo", "nbdcopy", "qemu-io")
	forClusters(t, func(t *testing.T, e *env) {
		src, want := randomFile(t, e.dir, imgSize)
		img := fmt.Sprintf("rbdnbd-snap-%d", time.Now().UnixNano())
		e.rbd(t, "import", "--no-progress", src, img)
		e.removeLater(t, img)
		e.rbd(t, "snap", "create", img+"@s1")

		// Move the head on through our own server.
		head, _ := e.serve(t, img, false)
		run(t, "qemu-io", "-f", "raw", "-c", "write -P 0x77 0 8M", head)

		uri, b := e.serve(t, img+"@s1", false)
		if !b.ReadOnly() {
			t.Errorf("snapshot backend is not read-only")
		}
		if out := run(t, "nbdinfo", "--json", uri); !bytes.Contains(out, []byte(`"is_read_only": true`)) {
			t.Errorf("snapshot export not advertised read-only:\n%s", out)
		}
		dst := filepath.Join(e.dir, "snapout")
		run(t, "nbdcopy", uri, dst)
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, want) {
			t.Errorf("snapshot export does not serve the snapshot's data (%v)", err)
		}
		// Writes: refused by the server (read-only export) and by the
		// backend itself.
		cmd := exec.Command("qemu-io", "-f", "raw", "-c", "write -P 0x99 0 4096", uri)
		if out, err := cmd.CombinedOutput(); err == nil || !bytes.Contains(out, []byte("Permission denied")) {
			t.Errorf("qemu-io write to a snapshot export: %v\n%s", err, out)
		}
		ctx := context.Background()
		if err := b.WriteAt(ctx, make([]byte, 4096), 0, false); !errors.Is(err, syscall.EPERM) {
			t.Errorf("WriteAt on snapshot: %v, want EPERM", err)
		}
		if err := b.Discard(ctx, 0, 4096); !errors.Is(err, syscall.EPERM) {
			t.Errorf("Discard on snapshot: %v, want EPERM", err)
		}
		if err := b.WriteZeroes(ctx, 0, 4096, true); !errors.Is(err, syscall.EPERM) {
			t.Errorf("WriteZeroes on snapshot: %v, want EPERM", err)
		}
		if _, got := e.export(t, img+"@s1"); !bytes.Equal(got, want) {
			t.Errorf("rbd export of the snapshot changed")
		}
	})
}

// TestWriteZeroesNoHole: with noHole the range stays allocated (the
// objects exist), without it whole objects are released.
func TestWriteZeroesNoHole(t *testing.T) {
	forClusters(t, func(t *testing.T, e *env) {
		img := e.newImage(t)
		_, b := e.serve(t, img, false)
		ctx := context.Background()
		if err := b.WriteZeroes(ctx, 0, 8<<20, true); err != nil {
			t.Fatal(err)
		}
		used := func() int64 {
			var du struct {
				Images []struct {
					Used int64 `json:"used_size"`
				} `json:"images"`
			}
			out := e.rbd(t, "du", "--format", "json", img)
			if err := json.Unmarshal(out, &du); err != nil || len(du.Images) != 1 {
				t.Fatalf("rbd du: %v\n%s", err, out)
			}
			return du.Images[0].Used
		}
		if n := used(); n != 8<<20 {
			t.Errorf("after WriteZeroes with noHole: used %d, want %d", n, 8<<20)
		}
		if err := b.WriteZeroes(ctx, 0, 8<<20, false); err != nil {
			t.Fatal(err)
		}
		if n := used(); n != 0 {
			t.Errorf("after WriteZeroes without noHole: used %d, want 0", n)
		}
		p := make([]byte, 8<<20)
		p[0] = 1
		if err := b.ReadAt(ctx, p, 0); err != nil || !bytes.Equal(p, make([]byte, 8<<20)) {
			t.Errorf("zeroed range reads back non-zero (%v)", err)
		}
	})
}
