package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// TestNBDServeRBD: `csi-gorbd nbd serve POOL/IMAGE[@SNAP]` serves an image
// made by the rbd CLI; the snapshot is advertised read-only.
func TestNBDServeRBD(t *testing.T) {
	if _, err := exec.LookPath("nbdinfo"); err != nil {
		cephtest.Missing(t, "nbdinfo not installed (test/deps.sh)")
	}
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	pool := cl.Get("CEPH_POOL")
	img := fmt.Sprintf("cmdnbd-%d", time.Now().UnixNano())
	if _, stderr, code := cephTool(t, cl, "rbd", "create", "--size", "8M", pool+"/"+img); code != 0 {
		t.Fatalf("rbd create: %s", stderr)
	}
	t.Cleanup(func() {
		cephTool(t, cl, "rbd", "snap", "purge", "--no-progress", pool+"/"+img)
		if _, stderr, code := cephTool(t, cl, "rbd", "rm", "--no-progress", pool+"/"+img); code != 0 {
			t.Errorf("rbd rm: %s", stderr)
		}
	})
	if _, stderr, code := cephTool(t, cl, "rbd", "snap", "create", pool+"/"+img+"@s1"); code != 0 {
		t.Fatalf("rbd snap create: %s", stderr)
	}
	dir, err := os.MkdirTemp("", "cmdnbd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	serve := func(spec string, extra ...string) string {
		t.Helper()
		sock := filepath.Join(dir, fmt.Sprintf("%d.sock", time.Now().UnixNano()%1e9))
		args := append([]string{"-c", cl.Conf(), "-k", cl.Keyring(), "nbd", "serve", spec, "--listen", "unix:" + sock}, extra...)
		cmd := exec.Command(bin, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Errorf("nbd serve %s: %v\n%s", spec, err, stderr.String())
			}
		})
		for i := 0; ; i++ {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if i == 1000 {
				t.Fatalf("nbd serve %s never listened\n%s", spec, stderr.String())
			}
			time.Sleep(10 * time.Millisecond) // polling for the socket to appear
		}
		out, err := exec.Command("nbdinfo", "--json", "nbd+unix:///?socket="+sock).CombinedOutput()
		if err != nil {
			t.Fatalf("nbdinfo: %v\n%s", err, out)
		}
		return string(out)
	}

	head := serve(pool + "/" + img)
	if !strings.Contains(head, `"is_read_only": false`) || !strings.Contains(head, `"export-size": 8388608`) ||
		!strings.Contains(head, `"description": "rbd `+pool+"/"+img+`"`) {
		t.Errorf("head export:\n%s", head)
	}
	snap := serve(pool + "/" + img + "@s1")
	if !strings.Contains(snap, `"is_read_only": true`) {
		t.Errorf("snapshot export not read-only:\n%s", snap)
	}

	_, stderr, code := run(t, bin, "-c", cl.Conf(), "-k", cl.Keyring(), "nbd", "serve", "no-pool-here", "--listen", "unix:"+filepath.Join(dir, "x.sock"))
	if code == 0 || !strings.Contains(stderr, "POOL/IMAGE") {
		t.Errorf("bad spec: exit %d, %s", code, stderr)
	}
}

// TestNBDServeRBDMulti: one `csi-gorbd nbd serve` process serves several
// images (and a snapshot) as exports named by their specs. qemu-io writes
// a different pattern into each through NBD; the rbd CLI (librbd) then
// exports every image and must find exactly that pattern, so no write went
// to the wrong image.
func TestNBDServeRBDMulti(t *testing.T) {
	for _, tool := range []string{"nbdinfo", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			cephtest.Missing(t, "%s not installed (test/deps.sh)", tool)
		}
	}
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	pool := cl.Get("CEPH_POOL")
	base := fmt.Sprintf("cmdnbdmulti-%d", time.Now().UnixNano())
	var specs []string
	for i := range 3 {
		spec := fmt.Sprintf("%s/%s-%d", pool, base, i)
		if _, stderr, code := cephTool(t, cl, "rbd", "create", "--size", "4M", spec); code != 0 {
			t.Fatalf("rbd create: %s", stderr)
		}
		t.Cleanup(func() {
			cephTool(t, cl, "rbd", "snap", "purge", "--no-progress", spec)
			if _, stderr, code := cephTool(t, cl, "rbd", "rm", "--no-progress", spec); code != 0 {
				t.Errorf("rbd rm: %s", stderr)
			}
		})
		specs = append(specs, spec)
	}
	if _, stderr, code := cephTool(t, cl, "rbd", "snap", "create", specs[0]+"@s1"); code != 0 {
		t.Fatalf("rbd snap create: %s", stderr)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "multi.sock")
	args := append([]string{"-c", cl.Conf(), "-k", cl.Keyring(), "nbd", "serve", "--listen", "unix:" + sock}, specs...)
	args = append(args, specs[0]+"@s1")
	cmd := exec.Command(bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("nbd serve: %v\n%s", err, stderr.String())
		}
	}
	t.Cleanup(stop)
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 1000 {
			t.Fatalf("nbd serve never listened\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for the socket to appear
	}
	list, err := exec.Command("nbdinfo", "--list", "--json", "nbd+unix:///?socket="+sock).CombinedOutput()
	if err != nil {
		t.Fatalf("nbdinfo --list: %v\n%s", err, list)
	}
	for _, s := range append(specs, specs[0]+"@s1") {
		if !strings.Contains(string(list), `"export-name": "`+s+`"`) {
			t.Errorf("export %s not listed:\n%s", s, list)
		}
	}
	uri := func(s string) string { return "nbd+unix:///" + s + "?socket=" + sock }
	for i, s := range specs {
		out, err := exec.Command("qemu-io", "-f", "raw", "-c", fmt.Sprintf("write -P 0x%02x 0 4M", 0xa0+i), uri(s)).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-io write %s: %v\n%s", s, err, out)
		}
	}
	if out, err := exec.Command("qemu-io", "-f", "raw", "-r", "-c", "read -P 0 0 4M", uri(specs[0]+"@s1")).CombinedOutput(); err != nil ||
		strings.Contains(string(out), "Pattern verification failed") {
		t.Errorf("snapshot export changed: %v\n%s", err, out)
	}
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write 0 4k", uri(specs[0]+"@s1")).CombinedOutput(); err == nil &&
		!strings.Contains(string(out), "failed") {
		t.Errorf("write to the snapshot export succeeded:\n%s", out)
	}
	stop()
	for i, s := range specs {
		f := filepath.Join(dir, fmt.Sprintf("exp%d", i))
		if _, stderr, code := cephTool(t, cl, "rbd", "export", "--no-progress", s, f); code != 0 {
			t.Fatalf("rbd export %s: %s", s, stderr)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := byte(0xa0 + i)
		for off, c := range b {
			if c != want {
				t.Fatalf("%s: byte %d is %#x, want %#x", s, off, c, want)
			}
		}
		if len(b) != 4<<20 {
			t.Errorf("%s: exported %d bytes, want 4 MiB", s, len(b))
		}
	}
}
