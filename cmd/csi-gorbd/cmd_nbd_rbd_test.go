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
