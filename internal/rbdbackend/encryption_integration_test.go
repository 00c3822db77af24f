package rbdbackend

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// Encryption interop with each release's own librbd: qemu's rbd driver
// with encrypt.format=luks1|luks2 (the host's qemu for Pacific, the
// chroots' for Reef and Tentacle: test/cluster/chroot.sh installs it) is
// librbd's encryption layer; `rbd encryption format` is the release's
// formatter; cryptsetup (no device-mapper on the host: luksDump,
// --test-passphrase, --dump-volume-key) checks exported images.

// encImgSize: LUKS2 has a 16 MiB header area, LUKS1 4 MiB (with 4 MiB
// objects); the rest is plaintext.
const encImgSize = 24 << 20

// forEncClusters runs fn on every release, tentacle256 (aes256k keys
// only, which the host's Pacific tools cannot use) included: the
// chroots' tools can. The clusters run in parallel: most of the time
// goes to starting tools and unlocking librbd's keyslots (whose KDF
// cryptsetup benchmarks to about a second).
func forEncClusters(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, name := range cephtest.All() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newEnv(t, name))
		})
	}
}

func plainSize(format string) int {
	if format == "luks1" {
		return encImgSize - 4<<20
	}
	return encImgSize - 16<<20
}

var fastKDF = luks.KDF{Type: luks.KDFPBKDF2, Hash: "sha256", Iterations: 1000}

func (e *env) newImageSize(t *testing.T, size int) string {
	t.Helper()
	name := fmt.Sprintf("rbdenc-%d", time.Now().UnixNano())
	e.rbd(t, "create", "--size", fmt.Sprint(size>>20)+"M", name)
	e.removeLater(t, name)
	return name
}

// cli runs a tool of the cluster's release (in its chroot, if any).
func (e *env) cli(t *testing.T, tool string, args ...string) []byte {
	t.Helper()
	full := append([]string{"env", "CEPH_ARGS=--keyring " + e.cl.Keyring(), tool}, args...)
	if c := e.cl.Get("CEPH_CLI"); c != "" {
		full = append(strings.Fields(c), full...)
	}
	return run(t, full[0], full[1:]...)
}

// qemuRBD is the --image-opts of an image through librbd's encryption
// (qemu names LUKS1 "luks").
func (e *env) qemuRBD(image, format string) string {
	if format == "luks1" {
		format = "luks"
	}
	return fmt.Sprintf("driver=rbd,pool=%s,image=%s,conf=%s,user=admin,encrypt.format=%s,encrypt.key-secret=sec0",
		e.pool, image, e.cl.Conf(), format)
}

// librbdWrite writes with qemu-io through librbd's encryption.
func (e *env) librbdWrite(t *testing.T, image, format, pass string, cmds ...string) {
	t.Helper()
	args := []string{"--object", "secret,id=sec0,file=" + pass, "--image-opts", e.qemuRBD(image, format)}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	e.cli(t, "qemu-io", args...)
}

// librbdRead returns the whole plaintext as librbd's encryption shows it.
func (e *env) librbdRead(t *testing.T, image, format, pass string) []byte {
	t.Helper()
	out := filepath.Join(e.dir, fmt.Sprintf("plain%d", time.Now().UnixNano()))
	defer os.Remove(out)
	e.cli(t, "qemu-img", "convert", "--object", "secret,id=sec0,file="+pass, "--image-opts", e.qemuRBD(image, format), "-O", "raw", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ourRead returns the whole plaintext through our layer.
func ourRead(t *testing.T, b *Backend) []byte {
	t.Helper()
	p := make([]byte, b.Size())
	if err := b.ReadAt(context.Background(), p, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) passFile(t *testing.T, pass string) string {
	t.Helper()
	p := filepath.Join(e.dir, fmt.Sprintf("pass%d", time.Now().UnixNano()))
	if err := os.WriteFile(p, []byte(pass), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveEncrypted serves an image through our NBD server, unlocked.
func (e *env) serveEncrypted(t *testing.T, image, pass string) (string, *Backend) {
	t.Helper()
	// Unlocked before it is served: Encrypt changes what Size reports.
	return e.serveWith(t, image, false, func(b *Backend) {
		if err := b.Encrypt(context.Background(), []byte(pass), nil); err != nil {
			t.Fatal(err)
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := firstDiff(got, want)
		t.Fatalf("%s: %d vs %d bytes, first difference at %d: % x vs % x", what, len(got), len(want), i,
			got[i:min(len(got), i+16)], want[i:min(len(want), i+16)])
	}
}

// TestEncryptionLibrbdInterop: for LUKS1 and LUKS2, an image formatted by
// the release's `rbd encryption format` and written through its librbd
// reads back byte-identical here (layer and NBD server), and an image
// we format and write reads back byte-identical through librbd; `rbd
// export` of ours is ciphertext that cryptsetup accepts.
func TestEncryptionLibrbdInterop(t *testing.T) {
	needTool(t, "qemu-io", "cryptsetup", "nbdcopy")
	forEncClusters(t, func(t *testing.T, e *env) {
		pass := "librbd interop passphrase"
		pf := e.passFile(t, pass)
		for _, format := range []string{"luks2", "luks1"} {
			t.Run(format, func(t *testing.T) {
				// librbd formats and writes; we read.
				theirs := e.newImageSize(t, encImgSize)
				e.rbd(t, "encryption", "format", theirs, format, pf)
				ps := plainSize(format)
				e.librbdWrite(t, theirs, format, pf,
					fmt.Sprintf("write -P 0x11 0 %d", ps), "write -P 0x22 100 3000", "write -P 0x33 1048575 70000", fmt.Sprintf("write -P 0x44 %d 4096", ps-4096))
				want := e.librbdRead(t, theirs, format, pf)
				if len(want) != ps {
					t.Fatalf("librbd shows %d plaintext bytes", len(want))
				}
				uri, b := e.serveEncrypted(t, theirs, pass)
				sameBytes(t, "librbd's image through our layer", ourRead(t, b), want)
				e.checkNBD(t, uri, want)

				// We format and write; librbd reads.
				ours := e.newImageSize(t, encImgSize)
				e.formatOurs(t, ours, format, pass, encryption.LayoutLibrbd)
				uri2, b2 := e.serveEncrypted(t, ours, pass)
				model := e.fillOurs(t, uri2, b2)
				sameBytes(t, "our image through librbd", e.librbdRead(t, ours, format, pf), model)
				e.checkExportIsCiphertext(t, ours, pass, model)
			})
		}
	})
}

// checkNBD copies the whole export out of our NBD server (nbdcopy).
func (e *env) checkNBD(t *testing.T, uri string, want []byte) {
	t.Helper()
	sameBytes(t, "nbdcopy through our NBD server", run(t, "nbdcopy", "--", uri, "-"), want)
}

func (e *env) formatOurs(t *testing.T, image, format, pass string, layout encryption.Layout) {
	t.Helper()
	ctx := context.Background()
	io, err := e.conn.OpenIOContext(ctx, e.pool)
	if err != nil {
		t.Fatal(err)
	}
	img, err := rbd.Open(ctx, io, image, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close(ctx)
	v := 2
	if format == "luks1" {
		v = 1
	}
	vol, err := encryption.Format(ctx, img, []byte(pass), &encryption.FormatOptions{Version: v, Layout: layout, KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	vol.Close()
}

// fillOurs writes the whole plaintext through our NBD server (qemu-io)
// and random bytes at unaligned offsets through the backend; it returns
// the expected plaintext.
func (e *env) fillOurs(t *testing.T, uri string, b *Backend) []byte {
	t.Helper()
	size := int(b.Size())
	model := bytes.Repeat([]byte{0x5a}, size)
	run(t, "qemu-io", "-f", "raw", "-c", fmt.Sprintf("write -P 0x5a 0 %d", size), "-c", "write -P 0x6b 4097 5000", uri)
	copy(model[4097:], bytes.Repeat([]byte{0x6b}, 5000))
	r := make([]byte, 200000)
	rand.Read(r)
	if err := b.WriteAt(context.Background(), r, 3<<20+333, false); err != nil {
		t.Fatal(err)
	}
	copy(model[3<<20+333:], r)
	if size < 4<<20 {
		t.Fatalf("plaintext of %d bytes is too small for the test", size)
	}
	return model
}

// checkExportIsCiphertext: `rbd export` holds none of the plaintext's
// random bytes, cryptsetup accepts its header and passphrase, and our
// luks package decrypts the exported file to the same plaintext.
func (e *env) checkExportIsCiphertext(t *testing.T, image, pass string, model []byte) {
	t.Helper()
	file, raw := e.export(t, image)
	probe := model[3<<20+1000 : 3<<20+1064]
	if bytes.Contains(raw, probe) || bytes.Contains(raw, bytes.Repeat([]byte{0x5a}, 64)) {
		t.Fatal("rbd export contains plaintext")
	}
	run(t, "cryptsetup", "luksDump", file)
	cmd := exec.Command("cryptsetup", "open", "--test-passphrase", "--key-file", "-", file)
	cmd.Stdin = strings.NewReader(pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cryptsetup open --test-passphrase: %v\n%s", err, out)
	}
	h, err := luks.DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := h.Unlock(bytes.NewReader(raw), []byte(pass), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vol.Close()
	c, _ := vol.NewCipher()
	plain := make([]byte, len(raw)-int(h.DataOffset()))
	c.Decrypt(plain, raw[h.DataOffset():], 0)
	sameBytes(t, "exported image decrypted from the file", plain, model)
}

// TestEncryptionDMCryptLayout: the dm-crypt layout (what cryptsetup
// luksFormat writes on a mapped image) opens with librbd as well; a
// header cryptsetup formatted on a file, imported with `rbd import` and
// written through librbd, is unlocked here.
func TestEncryptionDMCryptLayout(t *testing.T) {
	needTool(t, "qemu-io", "cryptsetup")
	forEncClusters(t, func(t *testing.T, e *env) {
		pass := "dm-crypt layout passphrase"
		pf := e.passFile(t, pass)
		ours := e.newImageSize(t, encImgSize)
		e.formatOurs(t, ours, "luks2", pass, encryption.LayoutDMCrypt)
		uri, b := e.serveEncrypted(t, ours, pass)
		model := e.fillOurs(t, uri, b)
		sameBytes(t, "dm-crypt layout through librbd", e.librbdRead(t, ours, "luks2", pf), model)
		e.checkExportIsCiphertext(t, ours, pass, model)

		// cryptsetup's own header on a raw file, imported.
		file := filepath.Join(e.dir, fmt.Sprintf("cs%d", time.Now().UnixNano()))
		if err := os.WriteFile(file, make([]byte, encImgSize), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "argon2id",
			"--pbkdf-memory", "65536", "--pbkdf-force-iterations", "4", "--key-file", "-", file)
		cmd.Stdin = strings.NewReader(pass)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cryptsetup luksFormat: %v\n%s", err, out)
		}
		name := fmt.Sprintf("rbdenc-cs-%d", time.Now().UnixNano())
		e.rbd(t, "import", "--no-progress", file, name)
		e.removeLater(t, name)
		e.librbdWrite(t, name, "luks2", pf, fmt.Sprintf("write -P 0x77 0 %d", plainSize("luks2")), "write -P 0x88 12345 6789")
		want := e.librbdRead(t, name, "luks2", pf)
		_, b2 := e.serveEncrypted(t, name, pass)
		sameBytes(t, "cryptsetup-formatted image through our layer", ourRead(t, b2), want)
	})
}

// TestEncryptionClones: a clone of an encrypted image (not formatted on
// its own: it shares the parent's header and key) reads the same here
// and through librbd, with writes from either side; a clone that librbd
// formatted with its own key (Reef and later) is refused clearly.
func TestEncryptionClones(t *testing.T) {
	needTool(t, "qemu-io")
	forEncClusters(t, func(t *testing.T, e *env) {
		pass := "clone passphrase"
		pf := e.passFile(t, pass)
		parent := e.newImageSize(t, encImgSize)
		e.rbd(t, "encryption", "format", parent, "luks2", pf)
		e.librbdWrite(t, parent, "luks2", pf, fmt.Sprintf("write -P 0x21 0 %d", plainSize("luks2")), "write -P 0x43 5M 1M")
		e.rbd(t, "snap", "create", parent+"@s")
		e.rbd(t, "snap", "protect", parent+"@s")
		child := parent + "-c"
		e.rbd(t, "clone", parent+"@s", child)
		t.Cleanup(func() {
			full := e.rbdArgs([]string{"rm", "--no-progress", child})
			exec.Command(full[0], full[1:]...).Run()
			full = e.rbdArgs([]string{"snap", "unprotect", parent + "@s"})
			exec.Command(full[0], full[1:]...).Run()
		})
		// librbd writes into the clone (copy-up of the parent's ciphertext).
		e.librbdWrite(t, child, "luks2", pf, fmt.Sprintf("write -P 0x65 %d 10000", 4<<20+100))
		want := e.librbdRead(t, child, "luks2", pf)
		_, b := e.serveEncrypted(t, child, pass)
		sameBytes(t, "librbd-written clone through our layer", ourRead(t, b), want)
		// We write into the clone; librbd reads it.
		r := make([]byte, 123457)
		rand.Read(r)
		if err := b.WriteAt(context.Background(), r, 6<<20+7, false); err != nil {
			t.Fatal(err)
		}
		copy(want[6<<20+7:], r)
		sameBytes(t, "our clone writes through librbd", e.librbdRead(t, child, "luks2", pf), want)
		sameBytes(t, "parent unchanged", e.librbdRead(t, parent, "luks2", pf)[6<<20:6<<20+1000], bytes.Repeat([]byte{0x21}, 1000))

		// librbd's layered encryption: a clone formatted on its own.
		own := parent + "-f"
		cmd := e.rbdArgs([]string{"clone", parent + "@s", own})
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("clone: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			full := e.rbdArgs([]string{"rm", "--no-progress", own})
			exec.Command(full[0], full[1:]...).Run()
		})
		fc := e.rbdArgs([]string{"encryption", "format", own, "luks2", pf})
		out, err := exec.Command(fc[0], fc[1:]...).CombinedOutput()
		if e.cl.Get("CEPH_RELEASE") == "pacific" {
			if err == nil {
				t.Fatal("Pacific formatted a clone; it used to refuse (EOPNOTSUPP)")
			}
			return
		}
		if err != nil {
			t.Fatalf("rbd encryption format of a clone: %v\n%s", err, out)
		}
		_, ob := e.serve(t, own, false)
		if err := ob.Encrypt(context.Background(), []byte(pass), nil); !errors.Is(err, encryption.ErrClonedFormat) {
			t.Fatalf("librbd-formatted clone: %v, want ErrClonedFormat", err)
		}
	})
}
