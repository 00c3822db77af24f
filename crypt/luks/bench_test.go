package luks

import "testing"

func benchCipher(b *testing.B, sectorSize, n int) {
	c, err := NewCipher(CipherXTSPlain64, make([]byte, 64), sectorSize, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, n)
	b.SetBytes(int64(n))
	for b.Loop() {
		c.Encrypt(buf, buf, 0)
	}
}

func BenchmarkEncrypt4K(b *testing.B)    { benchCipher(b, 4096, 4096) }
func BenchmarkEncrypt1M(b *testing.B)    { benchCipher(b, 4096, 1<<20) }
func BenchmarkEncrypt1M512(b *testing.B) { benchCipher(b, 512, 1<<20) }

// benchOwn against BenchmarkEncrypt1M before Cipher used xtsCipher
// (golang.org/x/crypto/xts): 263 vs 1147 MB/s on the loaded test box.
func benchOwn(b *testing.B, dec bool, n int) {
	c, _ := newXTS(make([]byte, 64))
	buf := make([]byte, n)
	b.SetBytes(int64(n))
	for b.Loop() {
		for i := 0; i < n; i += 4096 {
			if dec {
				c.decrypt(buf[i:i+4096], buf[i:i+4096], uint64(i/512))
			} else {
				c.encrypt(buf[i:i+4096], buf[i:i+4096], uint64(i/512))
			}
		}
	}
}

func BenchmarkOwnEncrypt1M(b *testing.B) { benchOwn(b, false, 1<<20) }
func BenchmarkOwnDecrypt1M(b *testing.B) { benchOwn(b, true, 1<<20) }
