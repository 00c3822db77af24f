package luks

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQemuLUKSData: qemu's own LUKS block driver (LUKS1,
// aes-xts-plain64) is an independent implementation of the data path:
// what it writes decrypts here, and what we write it reads back.
func TestQemuLUKSData(t *testing.T) {
	needTool(t, "qemu-img")
	needTool(t, "qemu-io")
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("qemu pass"), 0o600)
	secret := "secret,id=s0,file=" + passFile
	opts := func(file string) string { return "driver=luks,key-secret=s0,file.filename=" + file }

	// qemu formats and writes; we read.
	theirs := filepath.Join(dir, "theirs")
	qemuCreateLUKS(t, secret, theirs)
	run(t, nil, "qemu-io", "--object", secret, "--image-opts", opts(theirs),
		"-c", "write -P 0x3c 0 64k", "-c", "write -P 0xc3 1M 512", "-c", "write -P 0x11 3M 4k")
	d, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	h, err := DecodeHeader(d)
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.Unlock(memDisk(d), []byte("qemu pass"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.NewCipher()
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 4<<20)
	c.Decrypt(plain, d[h.DataOffset():h.DataOffset()+4<<20], 0)
	for _, w := range []struct {
		off, n int
		b      byte
	}{{0, 64 << 10, 0x3c}, {1 << 20, 512, 0xc3}, {3 << 20, 4096, 0x11}} {
		if !bytes.Equal(plain[w.off:w.off+w.n], bytes.Repeat([]byte{w.b}, w.n)) {
			t.Fatalf("qemu's %#x at %d does not decrypt here", w.b, w.off)
		}
	}

	// We format and write; qemu reads.
	vol, err := Format(FormatOptions{Version: 1, KDF: testKDF}, []byte("qemu pass"))
	if err != nil {
		t.Fatal(err)
	}
	hb, err := vol.HeaderBytes()
	if err != nil {
		t.Fatal(err)
	}
	off := vol.Header().DataOffset()
	ours := make([]byte, off+4<<20)
	copy(ours, hb)
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i / 4096)
	}
	c2, _ := vol.NewCipher()
	c2.Encrypt(ours[off:], data, 0)
	file := filepath.Join(dir, "ours")
	os.WriteFile(file, ours, 0o600)
	args := []string{"--object", secret, "--image-opts", opts(file), "-r"}
	for _, sec := range []int{0, 1, 255, 1023} {
		args = append(args, "-c", fmt.Sprintf("read -P %#x %d 4096", byte(sec), sec*4096))
	}
	run(t, nil, "qemu-io", args...)
}

// qemuCreateLUKS makes a 4 MiB LUKS1 file with qemu-img. qemu times its
// PBKDF2 by the thread's CPU time and gives up with "Unable to get
// accurate CPU usage" when a round measured 0 ms (a coarse accounting
// tick on a fast machine); that failure says nothing about LUKS, so it
// is retried a few times.
func qemuCreateLUKS(t *testing.T, secret, file string) {
	t.Helper()
	args := []string{"create", "--object", secret, "-f", "luks",
		"-o", "key-secret=s0,cipher-alg=aes-256,cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256,iter-time=10", file, "4M"}
	for try := 1; ; try++ {
		out, err := exec.Command("qemu-img", args...).CombinedOutput()
		if err == nil {
			return
		}
		if try == 5 || !strings.Contains(string(out), "Unable to get accurate CPU usage") {
			t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		os.Remove(file)
	}
}
