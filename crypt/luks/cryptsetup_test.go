package luks

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// Oracles that need no device-mapper (the host kernel has none):
// cryptsetup reads headers from plain files (luksDump, --test-passphrase,
// --dump-volume-key) and luksFormats them; qemu-img's own LUKS driver
// (LUKS1, aes-xts-plain64, 512-byte sectors) encrypts and decrypts data
// in files. Opening with dm-crypt is the VM's part (test/vm).

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		cephtest.Missing(t, "%s not installed (test/deps.sh)", name)
	}
}

func run(t *testing.T, stdin []byte, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var mkDump = regexp.MustCompile(`(?s)(?:MK dump|Volume key):\s*((?:[0-9a-f]{2}\s+)+)`)

// cryptsetupKey returns the volume key cryptsetup unlocks from file.
func cryptsetupKey(t *testing.T, file, pass string) []byte {
	t.Helper()
	out := run(t, []byte(pass), "cryptsetup", "luksDump", "--dump-volume-key", "--batch-mode", "--key-file", "-", file)
	m := mkDump.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no volume key in:\n%s", out)
	}
	k, err := hex.DecodeString(strings.Join(strings.Fields(m[1]), ""))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCryptsetupReadsOurs: cryptsetup accepts every header we write
// (luksDump validates checksums and metadata), unlocks it with our
// passphrase and finds our volume key.
func TestCryptsetupReadsOurs(t *testing.T) {
	needTool(t, "cryptsetup")
	dir := t.TempDir()
	for i, o := range []FormatOptions{
		{},
		{SectorSize: 512, KeySize: 32},
		{KDF: KDF{Type: KDFArgon2id, Time: 1, MemoryKiB: 8192, Threads: 2}},
		{KDF: KDF{Type: KDFArgon2i, Time: 1, MemoryKiB: 8192, Threads: 1}, Alignment: 4 << 20},
		{Version: 1},
		{Version: 1, KeySize: 32},
	} {
		d, key := formatDisk(t, o, "our pass")
		file := filepath.Join(dir, "img")
		if err := os.WriteFile(file, d, 0o600); err != nil {
			t.Fatal(err)
		}
		dump := run(t, nil, "cryptsetup", "luksDump", file)
		if !strings.Contains(dump, "aes-xts-plain64") && !strings.Contains(dump, "xts-plain64") {
			t.Fatalf("case %d: luksDump:\n%s", i, dump)
		}
		run(t, []byte("our pass"), "cryptsetup", "open", "--test-passphrase", "--key-file", "-", file)
		if got := cryptsetupKey(t, file, "our pass"); !bytes.Equal(got, key) {
			t.Fatalf("case %d: cryptsetup's volume key %x, ours %x", i, got, key)
		}
		cmd := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", "-", file)
		cmd.Stdin = strings.NewReader("not it")
		if err := cmd.Run(); err == nil {
			t.Fatalf("case %d: cryptsetup accepts a wrong passphrase", i)
		}
	}
}

// TestWeReadCryptsetups: headers cryptsetup luksFormats (and extends
// with luksAddKey) unlock here with the same volume key.
func TestWeReadCryptsetups(t *testing.T) {
	needTool(t, "cryptsetup")
	dir := t.TempDir()
	for i, args := range [][]string{
		// Fixed KDF costs (no benchmark) keep the test quick; the
		// default argon2id shape otherwise.
		{"--type", "luks2", "--pbkdf", "argon2id", "--pbkdf-memory", "8192", "--pbkdf-parallel", "2", "--pbkdf-force-iterations", "4"},
		{"--type", "luks2", "--pbkdf", "argon2i", "--pbkdf-memory", "8192", "--pbkdf-force-iterations", "4", "--sector-size", "4096"},
		{"--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-size", "256"},
		{"--type", "luks1", "--pbkdf-force-iterations", "1000"},
		{"--type", "luks1", "--pbkdf-force-iterations", "1000", "--hash", "sha1", "--key-size", "256"},
	} {
		file := filepath.Join(dir, "img")
		if err := os.WriteFile(file, make([]byte, 20<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, []byte("their pass"), "cryptsetup", append(append([]string{"luksFormat", "--batch-mode", "--key-file", "-"}, args...), file)...)
		kf := filepath.Join(dir, "kf")
		os.WriteFile(kf, []byte("their pass"), 0o600)
		run(t, []byte("second"), "cryptsetup", "luksAddKey", "--batch-mode", "--key-file", kf, "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", file, "-")
		want := cryptsetupKey(t, file, "their pass")
		d, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		h, err := ReadHeader(memDisk(d))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for _, pass := range []string{"their pass", "second"} {
			v, err := h.Unlock(memDisk(d), []byte(pass), nil)
			if err != nil {
				t.Fatalf("case %d (%v) %q: %v", i, args, pass, err)
			}
			if !bytes.Equal(v.Key(), want) {
				t.Fatalf("case %d: key %x, cryptsetup's %x", i, v.Key(), want)
			}
		}
		if ks := h.Keyslots(); len(ks) != 2 {
			t.Fatalf("case %d: %d keyslots", i, len(ks))
		}
	}
}
