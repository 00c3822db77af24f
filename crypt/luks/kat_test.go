package luks

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPBKDF2Vectors: RFC 6070 (HMAC-SHA1) and RFC 7914 section 11
// (HMAC-SHA256), through the KDF LUKS keyslots use.
func TestPBKDF2Vectors(t *testing.T) {
	for _, v := range []struct {
		hash, pass, salt string
		iter             int
		want             string
	}{
		{"sha1", "password", "salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"},
		{"sha1", "password", "salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"},
		{"sha1", "password", "salt", 4096, "4b007901b765489abead49d926f721d065a429c1"},
		{"sha1", "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096,
			"3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"},
		{"sha1", "pass\x00word", "sa\x00lt", 4096, "56fa6aa75548099dcc37d7f03425e0c3"},
		{"sha256", "passwd", "salt", 1, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc" +
			"49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{"sha256", "Password", "NaCl", 80000, "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56" +
			"a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"},
	} {
		k := KDF{Type: KDFPBKDF2, Hash: v.hash, Iterations: v.iter}
		if err := k.check((&Limits{}).withDefaults()); err != nil {
			t.Fatal(err)
		}
		want := unhex(t, v.want)
		got, err := k.derive([]byte(v.pass), []byte(v.salt), len(want))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("PBKDF2-%s(%q, %q, %d) = %x, %v; want %x", v.hash, v.pass, v.salt, v.iter, got, err, want)
		}
	}
}

// TestArgon2Vectors: Argon2 version 0x13. RFC 9106's section 5 vectors
// also feed a secret and associated data, which LUKS2 never uses and
// golang.org/x/crypto/argon2 cannot take; these are the reference
// implementation's (phc-winner-argon2 test.c, by the RFC's authors)
// vectors without them, for both variants LUKS2 names.
func TestArgon2Vectors(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB per derivation")
	}
	for _, v := range []struct {
		typ  string
		want string
	}{
		{KDFArgon2i, "c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0"},
		{KDFArgon2id, "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"},
	} {
		k := KDF{Type: v.typ, Time: 2, MemoryKiB: 1 << 16, Threads: 1}
		if err := k.check((&Limits{}).withDefaults()); err != nil {
			t.Fatal(err)
		}
		got, err := k.derive([]byte("password"), []byte("somesalt"), 32)
		if err != nil || hex.EncodeToString(got) != v.want {
			t.Errorf("%s = %x, %v; want %s", v.typ, got, err, v.want)
		}
	}
}

// TestXTSVectors: IEEE 1619 vectors with 512-byte data units, through
// Cipher: a data unit sequence number n is the 512-byte sector at
// offset n*512 of the segment (plain64).
func TestXTSVectors(t *testing.T) {
	f, err := os.Open("testdata/xts-ieee1619.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fl := strings.Fields(line)
		seq, err := strconv.ParseUint(fl[2], 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		key, pt, ct := unhex(t, fl[1]), unhex(t, fl[3]), unhex(t, fl[4])
		c, err := NewCipher(CipherXTSPlain64, key, 512, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(pt))
		c.Encrypt(got, pt, seq*512)
		if !bytes.Equal(got, ct) {
			t.Errorf("vector %s: encrypt mismatch", fl[0])
		}
		c.Decrypt(got, got, seq*512)
		if !bytes.Equal(got, pt) {
			t.Errorf("vector %s: decrypt mismatch", fl[0])
		}
		// The same sector through iv_tweak instead of the offset.
		c2, _ := NewCipher(CipherXTSPlain64, key, 512, seq)
		c2.Encrypt(got, pt, 0)
		if !bytes.Equal(got, ct) {
			t.Errorf("vector %s: iv_tweak mismatch", fl[0])
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d vectors read, want 3", n)
	}
}

// TestXTSLargeSector: a 4096-byte sector is one XTS data unit whose
// tweak is the number of its first 512-byte sector (dm-crypt without
// iv_large_sectors, librbd): never the same as eight 512-byte units.
func TestXTSLargeSector(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 64)
	c4, _ := NewCipher(CipherXTSPlain64, key, 4096, 0)
	c5, _ := NewCipher(CipherXTSPlain64, key, 512, 0)
	pt := bytes.Repeat([]byte{0x42}, 8192)
	a, b := make([]byte, 8192), make([]byte, 8192)
	c4.Encrypt(a, pt, 0)
	c5.Encrypt(b, pt, 0)
	if !bytes.Equal(a[:16], b[:16]) {
		t.Fatal("first block differs: tweak of sector 0 must match")
	}
	if bytes.Equal(a[512:528], b[512:528]) {
		t.Fatal("4096-byte sector behaves like 512-byte sectors")
	}
	// second 4096 sector: tweak 8 = the 512-sector number
	one, _ := NewCipher(CipherXTSPlain64, key, 4096, 8)
	x := make([]byte, 4096)
	one.Encrypt(x, pt[:4096], 0)
	if !bytes.Equal(x, a[4096:]) {
		t.Fatal("sector 1 of 4096 bytes must use tweak 8")
	}
}
