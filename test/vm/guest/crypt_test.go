package guest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cryptImage is an RBD image of a crypt test on the host's cluster and
// the passphrase file that unlocks it.
type cryptImage struct {
	c     *hostCeph
	name  string // POOL/IMAGE
	pass  string // passphrase file
	state string // nbd state directory
}

func newCryptImage(t *testing.T, c *hostCeph, tag string, sizeMiB int) *cryptImage {
	t.Helper()
	im := &cryptImage{c: c, name: fmt.Sprintf("%s/vmE-%s-%d", c.Pool, tag, time.Now().UnixNano()),
		pass: "/tmp/pass-" + tag, state: "/tmp/nbd-state-" + tag}
	var b [24]byte
	rand.Read(b[:])
	// No trailing newline: rbd, rbd-nbd, cryptsetup -d and we all take
	// the whole file.
	if err := os.WriteFile(im.pass, []byte(hex.EncodeToString(b[:])), 0o600); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(im.state)
	c.CLI(t, "rbd", "create", im.name, "--size", strconv.Itoa(sizeMiB)+"M")
	t.Cleanup(func() {
		// After a failure the watch of a killed map process lingers on
		// the OSD for up to 30 s.
		for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(3 * time.Second) {
			out, err := exec.Command(os.Getenv("GORBD_BIN"), append(c.Args(), "rbd", "rm", im.name)...).CombinedOutput()
			if err == nil {
				return
			}
			if time.Now().After(deadline) || !strings.Contains(string(out), "watchers") {
				t.Logf("rbd rm %s: %v\n%s", im.name, err, out)
				return
			}
		}
	})
	return im
}

// mapRaw attaches the image's raw (ciphertext) bytes; mapPlain attaches
// its plaintext through our LUKS (format luks1, luks2 or luks).
func (im *cryptImage) mapRaw(t *testing.T, ctx context.Context) (*exec.Cmd, string) {
	return startCLI(t, ctx, append(im.c.Args(), "nbd", "map", im.name, "--state-dir", im.state)...)
}

func (im *cryptImage) mapPlain(t *testing.T, ctx context.Context, format string) (*exec.Cmd, string) {
	return startCLI(t, ctx, append(im.c.Args(), "nbd", "map", im.name, "--state-dir", im.state,
		"--encryption-format", format, "--encryption-passphrase-file", im.pass)...)
}

func (im *cryptImage) unmap(t *testing.T, ctx context.Context, cmd *exec.Cmd, dev string) {
	t.Helper()
	sh(t, os.Getenv("GORBD_BIN")+" nbd unmap "+dev+" --state-dir "+im.state)
	if err := waitCmd(t, ctx, cmd); err != nil {
		t.Errorf("nbd map process of %s: %v", dev, err)
	}
}

// cryptOpen opens dev with cryptsetup (dm-crypt) as /dev/mapper/name.
func (im *cryptImage) cryptOpen(t *testing.T, dev, name string) string {
	t.Helper()
	sh(t, "cryptsetup open --type luks --key-file "+im.pass+" "+dev+" "+name)
	t.Cleanup(func() { shOK("cryptsetup close " + name) })
	return "/dev/mapper/" + name
}

func blockdev(t *testing.T, flag, dev string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(sh(t, "blockdev "+flag+" "+dev)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var luksSector = regexp.MustCompile(`(?m)^\s*sector:\s*(\d+)`)

// sectorSize is the LUKS data sector size cryptsetup reads from dev's
// header (LUKS1: 512).
func sectorSize(t *testing.T, dev string) int64 {
	t.Helper()
	m := luksSector.FindStringSubmatch(sh(t, "cryptsetup luksDump "+dev))
	if m == nil {
		return 512
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// cheapKDF is the keyslot KDF of the headers the VM tests make. Under
// TCG Go's argon2 with two or more lanes is two orders of magnitude
// slower than with one (16 MiB, 1 pass: 42 s with 2 lanes, about 0.3 s
// with 1); the default (64 MiB, 3 passes, 4 lanes) takes minutes there.
const cheapKDF = "argon2id:iterations=1,memory=16384,parallel=1"

func needCryptsetup(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("cryptsetup"); err != nil {
		t.Fatal("cryptsetup is not in the VM (test/vm/run.sh packs it)")
	}
}

// TestDMCryptInterop: our in-process LUKS and the kernel's dm-crypt (with
// cryptsetup) read each other's RBD volumes, both attached through our
// NBD server — the encrypted ones in plaintext, the others raw.
//
// Ours to dm-crypt: an image formatted by "csi-gorbd rbd encryption
// format" (librbd layout LUKS1 and LUKS2, dm-crypt layout LUKS2) and
// written through "nbd map --encryption-format" is opened by "cryptsetup
// open" on a raw "nbd map": the same plaintext bytes, the same plaintext
// size, the same logical block size (the LUKS sector); on the dm-crypt
// layout an XFS made on our device mounts from dm-crypt with its file.
//
// dm-crypt to ours: an image luksFormat'ed by cryptsetup over a raw
// attachment — ceph-csi's arguments (LUKS2, sha256, argon2id with 32 MiB),
// LUKS2 with 512-byte sectors and PBKDF2 — and written through dm-crypt
// (ext4 and a file) mounts through "nbd map --encryption-format" with the
// file intact, fsck clean, and the device's size and logical block size
// equal to dm-crypt's. (cryptsetup's LUKS1 headers: crypt/luks's host
// tests.)
func TestDMCryptInterop(t *testing.T) {
	c := needHostCeph(t)
	needCryptsetup(t)
	ctx := testCtx(t, 20*time.Minute)
	t.Run("ours-to-dm-crypt", func(t *testing.T) {
		for _, v := range []struct{ tag, version, layout, fs string }{
			{"l2", "luks2", "librbd", ""},
			{"l1", "luks1", "librbd", ""},
			{"d2", "luks2", "dm-crypt", "xfs"},
		} {
			t.Run(v.tag, func(t *testing.T) { oursToDMCrypt(t, ctx, c, v.tag, v.version, v.layout, v.fs) })
		}
	})
	t.Run("dm-crypt-to-ours", func(t *testing.T) {
		for _, v := range []struct{ tag, format string }{
			// ceph-csi's LuksFormat arguments, with one argon2id lane and
			// 0.5 s of passes instead of cryptsetup's 2 s and up to 4
			// lanes (see cheapKDF: under TCG our unlock would take
			// minutes).
			{"cephcsi", "--type luks2 --hash sha256 --pbkdf-memory 32768 --pbkdf-parallel 1 --iter-time 500"},
			{"s512", "--type luks2 --sector-size 512 --pbkdf pbkdf2 --iter-time 200"},
		} {
			t.Run(v.tag, func(t *testing.T) { dmCryptToOurs(t, ctx, c, v.tag, v.format) })
		}
	})
}

func oursToDMCrypt(t *testing.T, ctx context.Context, c *hostCeph, tag, version, layout, fs string) {
	mib := 64
	if fs == "xfs" {
		mib = 336 // mkfs.xfs wants 300 MiB
	}
	im := newCryptImage(t, c, "o"+tag, mib)
	kdf := cheapKDF
	if version == "luks1" {
		kdf = "pbkdf2:iterations=20000"
	}
	c.CLI(t, "rbd", "encryption", "format", im.name, version, im.pass, "--layout", layout, "--kdf", kdf)
	cmd, dev := im.mapPlain(t, ctx, version)
	want := int64(4096)
	if version == "luks1" {
		want = 512
	}
	ss, size := blockdev(t, "--getss", dev), blockdev(t, "--getsize64", dev)
	if ss != want {
		t.Errorf("our %s device has %d-byte logical blocks, want the LUKS sector %d", version, ss, want)
	}
	var sum string
	if fs == "" {
		sum = randomFile(t, "/tmp/pattern-"+tag, 4<<20)
		sh(t, "dd if=/tmp/pattern-"+tag+" of="+dev+" bs=1M seek=1 oflag=direct conv=fsync 2>/dev/null")
	} else {
		sh(t, "mkfs.xfs -q -f -K "+dev)
		mount(t, fs, dev, "/mnt/ours-"+tag)
		sum = randomFile(t, "/tmp/pattern-"+tag, 2<<20)
		sh(t, "cp /tmp/pattern-"+tag+" /mnt/ours-"+tag+"/f && umount /mnt/ours-"+tag)
	}
	im.unmap(t, ctx, cmd, dev)

	rcmd, raw := im.mapRaw(t, ctx)
	if got := sectorSize(t, raw); got != want {
		t.Errorf("cryptsetup reads a %d-byte sector size from our header, want %d", got, want)
	}
	mapper := im.cryptOpen(t, raw, "ours-"+tag)
	if got := blockdev(t, "--getss", mapper); got != ss {
		t.Errorf("dm-crypt device: %d-byte logical blocks, ours %d", got, ss)
	}
	if got := blockdev(t, "--getsize64", mapper); got != size {
		t.Errorf("dm-crypt device: %d bytes, ours %d", got, size)
	}
	if fs == "" {
		got := sh(t, "dd if="+mapper+" bs=1M skip=1 count=4 iflag=direct 2>/dev/null | sha256sum")
		if !strings.HasPrefix(got, sum) {
			t.Errorf("dm-crypt reads %.16s at 1 MiB, we wrote %.16s", got, sum)
		}
	} else {
		mount(t, fs, mapper, "/mnt/dm-"+tag)
		if got := fileSum(t, "/mnt/dm-"+tag+"/f"); got != sum {
			t.Errorf("dm-crypt's %s shows the file as %.16s, we wrote %.16s", fs, got, sum)
		}
		sh(t, "umount /mnt/dm-"+tag)
	}
	sh(t, "cryptsetup close ours-"+tag)
	im.unmap(t, ctx, rcmd, raw)
	t.Logf("%s %s layout: %d bytes of plaintext, %d-byte blocks: dm-crypt reads what we wrote", version, layout, size, ss)
}

func dmCryptToOurs(t *testing.T, ctx context.Context, c *hostCeph, tag, format string) {
	im := newCryptImage(t, c, "d"+tag, 64)
	rcmd, raw := im.mapRaw(t, ctx)
	start := time.Now()
	sh(t, "cryptsetup -q luksFormat "+format+" "+raw+" -d "+im.pass)
	t.Logf("cryptsetup luksFormat %s: %v", format, time.Since(start).Round(time.Millisecond))
	ss := sectorSize(t, raw)
	mapper := im.cryptOpen(t, raw, "dm-"+tag)
	size := blockdev(t, "--getsize64", mapper)
	mkfs(t, "ext4", mapper)
	mount(t, "ext4", mapper, "/mnt/dm-"+tag)
	sum := randomFile(t, "/tmp/dmfile-"+tag, 3<<20)
	sh(t, "cp /tmp/dmfile-"+tag+" /mnt/dm-"+tag+"/f && umount /mnt/dm-"+tag+" && cryptsetup close dm-"+tag)
	im.unmap(t, ctx, rcmd, raw)

	format2 := "luks2"
	if strings.Contains(format, "luks1") {
		format2 = "luks1"
	}
	start = time.Now()
	cmd, dev := im.mapPlain(t, ctx, format2)
	t.Logf("unlocked by us in %v", time.Since(start).Round(time.Millisecond))
	if got := blockdev(t, "--getss", dev); got != ss {
		t.Errorf("our device has %d-byte logical blocks, the LUKS sector is %d", got, ss)
	}
	if got := blockdev(t, "--getsize64", dev); got != size {
		t.Errorf("our device: %d bytes, dm-crypt's %d", got, size)
	}
	sh(t, "fsck.ext4 -fn "+dev)
	mount(t, "ext4", dev, "/mnt/ours-"+tag)
	if got := fileSum(t, "/mnt/ours-"+tag+"/f"); got != sum {
		t.Errorf("we read the file as %.16s, dm-crypt wrote %.16s", got, sum)
	}
	sh(t, "umount /mnt/ours-"+tag)
	im.unmap(t, ctx, cmd, dev)
	t.Logf("cryptsetup %s (%d-byte sectors): we read what dm-crypt wrote", format, ss)
}
