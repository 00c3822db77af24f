// Package encryption serves an RBD image (or any Device) encrypted with
// LUKS in plaintext, in the calling process: what librbd's
// encryption-format=luks1|luks2 does inside qemu or rbd-nbd, and what
// dm-crypt does over a mapped device, without either. It builds on
// crypt/luks and knows no NBD or CSI.
//
//	img, _ := rbd.Open(ctx, io, "vol", nil)
//	vol, err := encryption.Format(ctx, img, pass, &encryption.FormatOptions{}) // librbd layout, LUKS2
//	vol.Close()
//	enc, err := encryption.Open(ctx, img, pass, nil)   // plaintext view; enc.Close closes img
//	_, err = enc.WriteAt(ctx, data, 0)
//
// # On the image
//
// Both layouts (Layout) put a LUKS header at byte 0 and the encrypted data
// at the header's data offset; the plaintext is the image minus that
// offset (Size), and a resize asks for plaintext+offset (RawSize, Resize).
// Data sectors are aes-xts-plain64 with the IV counted in 512-byte units
// from the data offset, whatever the sector size. This is what librbd
// writes on every release from Pacific on (checked against a Pacific
// export: the IV is relative to the data offset, not to the image start)
// and what dm-crypt reads, so either layout opens with librbd and with
// cryptsetup. LayoutLibrbd chooses what "rbd encryption format" chooses
// (LUKS2 4096-byte sectors, data offset aligned to the stripe period);
// LayoutDMCrypt what "cryptsetup luksFormat" on a mapped image chooses
// (ceph-csi's volumes). Opening needs no layout: the header says all.
//
// # Clones
//
// A clone of an encrypted image made without formatting the clone shares
// the parent's header and key: reads fall through to the parent's
// ciphertext and copy-up copies ciphertext, so the clone opens with the
// parent's passphrase (here as in librbd on every release; Pacific can
// do only this, it refuses to format a clone). AddPassphrase gives it a
// passphrase of its own for the same key. Since Quincy librbd can also
// format a clone with its own key ("layered encryption"): it marks the
// clone's header with the magic "RBDL\xba\xbe" so that no LUKS tool opens
// the child alone, and decrypts each layer with its own key. Reading
// such a clone needs the rbd layer to read the child's objects without
// falling through to the parent, which it cannot yet: Open fails with
// ErrClonedFormat, and Format refuses to format clones.
//
// # I/O
//
// Image is safe for concurrent use and runs each request in the caller's
// goroutine. Whole sectors go through the cipher in one pass (buffers
// from a pool of size classes); a request that starts or ends inside a
// sector reads those edge sectors and writes whole sectors back, holding
// an exclusive range lock over them (rangeLock) so that no concurrent
// write to the same sectors is lost; aligned writes share the lock.
// WriteZeroes writes encrypted zeros (other LUKS readers must see zeros
// too); Discard passes whole sectors down to the device. A sector whose
// ciphertext is all zeros (never written, discarded) reads as zeros here;
// librbd and dm-crypt show such sectors as noise, as after any discard.
//
// # Keys
//
// PassphraseSource (and PassphraseCreator for new volumes) is where a
// passphrase comes from: StaticPassphrase, PassphraseFile (rbd's
// --encryption-passphrase-file semantics: the whole file), and in the CSI
// layer stores that keep a wrapped passphrase in the image's metadata
// (Volume.Meta) or ask a KMS. Passphrases are byte slices the caller
// zeroes; nothing here logs or keeps them.
package encryption
