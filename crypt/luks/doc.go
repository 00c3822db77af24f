// Package luks reads and writes LUKS1 and LUKS2 headers and opens their
// keyslots, in pure Go, compatible with cryptsetup (libcryptsetup),
// dm-crypt, librbd's encryption and qemu's LUKS driver. It knows no
// devices beyond io.ReaderAt/io.WriterAt and nothing of Ceph.
//
//	h, err := luks.ReadHeader(dev)                     // both LUKS2 copies, checksums, JSON
//	vol, err := h.Unlock(dev, passphrase, nil)         // tries keyslots in priority order
//	defer vol.Close()
//	c, err := vol.NewCipher()                          // aes-xts-plain64 sector cipher
//	c.Decrypt(buf, buf, off)                           // off: bytes from h.DataOffset()
//
//	vol, err := luks.Format(luks.FormatOptions{}, passphrase) // new key, keyslot 0
//	err = vol.Commit(dev)                              // keyslot areas, then both header copies
//
// Files hold one on-disk thing each (facts from cryptsetup's
// docs/on-disk-format{,-luks2}.pdf and lib/luks1, lib/luks2):
//
//   - luks2_binary.go: the 4096-byte LUKS2 binary header (magic, hdr_size,
//     seqid, salts, checksum over the binary header and the JSON area).
//     Two copies, at 0 and at hdr_size; the valid copy with the higher
//     seqid wins, as in cryptsetup (which would also repair the other;
//     this package never writes on read).
//   - luks2_metadata.go, token.go: the JSON metadata (keyslots, tokens,
//     segments, digests, config), 64-bit values as decimal strings, and
//     the validation cryptsetup applies (sizes, overlapping areas, ids).
//     Tokens are kept verbatim.
//   - luks1.go: the 592-byte LUKS1 header with its eight keyslots.
//   - af.go: the anti-forensic splitter (4000 stripes, diffusion with the
//     keyslot's hash, big-endian block index prefix).
//   - kdf.go: PBKDF2 (crypto/pbkdf2), Argon2i and Argon2id
//     (golang.org/x/crypto/argon2), with Limits so that a hostile header
//     cannot make the caller allocate gigabytes or spin for hours.
//   - digest.go: the PBKDF2 digest that recognises the right volume key.
//   - cipher.go, xts.go, xts_aesni_amd64.s, aes_keyschedule.go:
//     aes-xts-plain64 (own XTS: an AES-NI loop on amd64, crypto/aes
//     elsewhere; checked against golang.org/x/crypto/xts, FIPS-197 key
//     schedules and IEEE 1619 vectors): the tweak is
//     the 512-byte sector number from the data offset plus iv_tweak, for
//     any sector size (dm-crypt without iv_large_sectors; librbd alike).
//   - header.go, luks2.go, volume.go, format.go: decoding, unlocking,
//     formatting, adding and removing keyslots.
//
// Supported: cipher aes-xts-plain64 with 256- or 512-bit keys for data and
// keyslots, one crypt segment (fixed or dynamic size), sector sizes
// 512..4096, hashes sha1/sha256/sha512. Refused with ErrUnsupported:
// other ciphers, integrity (dm-integrity) segments, reencryption in
// progress (mandatory requirements), detached LUKS1 headers.
//
// Keys: the volume key lives in the Volume until Close zeroes it; Go
// cannot promise no copy survives (the garbage collector moves nothing
// here, but the AES key schedule inside crypto/aes is out of reach).
// Errors are typed (errors.Is with ErrNotLUKS, ErrCorrupt,
// ErrUnsupported, ErrWrongPassphrase, ErrNoSpace, ErrKDFLimit,
// ErrInvalid); the package never logs.
package luks
