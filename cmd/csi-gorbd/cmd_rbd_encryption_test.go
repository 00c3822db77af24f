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

// TestRBDEncryptionCLI: `csi-gorbd rbd encryption format` writes a header
// librbd opens (qemu-io, encrypt.format=luks2, reads back what went in
// through our server), `nbd serve --encryption-format
// --encryption-passphrase-file` serves the plaintext, a wrong passphrase
// or format is refused, and the passphrase never shows in argv or output.
func TestRBDEncryptionCLI(t *testing.T) {
	for _, tool := range []string{"nbdinfo", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			cephtest.Missing(t, "%s not installed (test/deps.sh)", tool)
		}
	}
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	pool := cl.Get("CEPH_POOL")
	img := fmt.Sprintf("cmdenc-%d", time.Now().UnixNano())
	spec := pool + "/" + img
	if _, stderr, code := cephTool(t, cl, "rbd", "create", "--size", "24M", spec); code != 0 {
		t.Fatalf("rbd create: %s", stderr)
	}
	t.Cleanup(func() {
		if _, stderr, code := cephTool(t, cl, "rbd", "rm", "--no-progress", spec); code != 0 {
			t.Errorf("rbd rm: %s", stderr)
		}
	})
	dir, err := os.MkdirTemp("", "cmdenc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const secret = "correct horse battery staple"
	pf := filepath.Join(dir, "pass")
	os.WriteFile(pf, []byte(secret), 0o600)
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("nope"), 0o600)
	g := []string{"-c", cl.Conf(), "-k", cl.Keyring()}

	out, stderr, code := run(t, bin, append(g, "rbd", "encryption", "format", spec, "luks2", pf)...)
	if code != 0 || strings.Contains(out+stderr, secret) {
		t.Fatalf("encryption format: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := run(t, bin, append(g, "rbd", "encryption", "format", spec, "luks2", pf)...); code == 0 || !strings.Contains(stderr, "already formatted") {
		t.Errorf("second format: exit %d, %s", code, stderr)
	}

	sock := filepath.Join(dir, "s.sock")
	cmd := exec.Command(bin, append(g, "nbd", "serve", spec, "--listen", "unix:"+sock,
		"--encryption-format", "luks2", "--encryption-passphrase-file", pf)...)
	var serr strings.Builder
	cmd.Stderr = &serr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 1000 {
			t.Fatalf("nbd serve never listened\n%s", serr.String())
		}
		time.Sleep(10 * time.Millisecond) // polling for the socket to appear
	}
	uri := "nbd+unix:///?socket=" + sock
	info, err := exec.Command("nbdinfo", "--json", uri).CombinedOutput()
	if err != nil || !strings.Contains(string(info), `"export-size": 8388608`) || !strings.Contains(string(info), "(LUKS2)") {
		t.Errorf("nbdinfo: %v\n%s", err, info)
	}
	if out, err := exec.Command("qemu-io", "-f", "raw", "-c", "write -P 0x9c 0 1M", "-c", "write -P 0x3d 5000 100", uri).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io write: %v\n%s", err, out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nbd serve: %v\n%s", err, serr.String())
	}
	if strings.Contains(serr.String(), secret) {
		t.Fatal("the passphrase appeared in the server's output")
	}

	// librbd's encryption reads what we wrote.
	q := exec.Command("qemu-io", "--object", "secret,id=sec0,file="+pf, "--image-opts",
		fmt.Sprintf("driver=rbd,pool=%s,image=%s,conf=%s,user=admin,encrypt.format=luks2,encrypt.key-secret=sec0", pool, img, cl.Conf()),
		"-r", "-c", "read -P 0x9c 0 5000", "-c", "read -P 0x3d 5000 100", "-c", "read -P 0x9c 5100 1043476")
	q.Env = append(os.Environ(), "CEPH_ARGS=--keyring "+cl.Keyring())
	if out, err := q.CombinedOutput(); err != nil {
		t.Fatalf("librbd read: %v\n%s", err, out)
	}

	// Refusals: wrong passphrase, wrong format, flags without each other.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--encryption-format", "luks2", "--encryption-passphrase-file", wrong}, "no keyslot opens"},
		{[]string{"--encryption-format", "luks1", "--encryption-passphrase-file", pf}, "image is LUKS2"},
		{[]string{"--encryption-format", "luks2"}, "needs --encryption-passphrase-file"},
		{[]string{"--encryption-passphrase-file", pf}, "needs --encryption-format"},
	} {
		args := append(append(g, "nbd", "serve", spec, "--listen", "unix:"+filepath.Join(dir, "x.sock")), c.args...)
		_, stderr, code := run(t, bin, args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.args, code, stderr)
		}
	}
}
