package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// Encryption on the command line, with rbd's and rbd-nbd's names:
//
//	csi-gorbd rbd encryption format [POOL/]IMAGE luks1|luks2 PASSFILE [--cipher-alg aes-128|aes-256]
//	csi-gorbd nbd serve|map POOL/IMAGE --encryption-format luks1|luks2|luks --encryption-passphrase-file FILE
//
// Passphrases are only ever read from files (never argv, never logged).
// A read-write "nbd map" records the format and the passphrase file's
// path (not its content) in STATE-DIR/encryption, so that "nbd recover"
// unlocks the image again after a restart.

func (r *rbdCLI) encryptionCmd() *cobra.Command {
	enc := &cobra.Command{Use: "encryption", Short: "Manage an image's encryption (LUKS)"}

	var cipherAlg, layout, kdf string
	var force bool
	format := &cobra.Command{
		Use:   "format [POOL/]IMAGE luks1|luks2 PASSPHRASE-FILE",
		Short: "Format an image with a LUKS header, as rbd encryption format",
		Long: `Write a LUKS1 or LUKS2 header (aes-xts-plain64) at the start of the image,
with one keyslot for the passphrase in PASSPHRASE-FILE (the whole file). The
plaintext is then the image minus the header area (16 MiB with 4 MiB objects).

--layout librbd (default) writes what "rbd encryption format" writes: librbd
opens the image with encryption-format=luks2 (qemu, rbd-nbd), and "nbd serve"
or "nbd map" here with --encryption-format. --layout dm-crypt writes what
"cryptsetup luksFormat" writes on a mapped device (ceph-csi's node).
Both open with cryptsetup over an "rbd export" of the image.

--kdf sets the keyslot's KDF: argon2id[:iterations=N,memory=KiB,parallel=N],
argon2i[...] or pbkdf2[:hash=H,iterations=N] (LUKS1: pbkdf2 only). The
default is argon2id with 3 iterations, 64 MiB and 4 lanes for LUKS2 and
pbkdf2-sha256 for LUKS1.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := encryption.FormatOptions{Force: force}
			switch args[1] {
			case "luks1":
				o.Version = 1
			case "luks2":
				o.Version = 2
			default:
				return fmt.Errorf("format %q: luks1 or luks2", args[1])
			}
			switch cipherAlg {
			case "aes-128":
				o.KeySize = 32
			case "aes-256":
				o.KeySize = 64
			default:
				return fmt.Errorf("--cipher-alg %q: aes-128 or aes-256", cipherAlg)
			}
			switch layout {
			case "librbd":
				o.Layout = encryption.LayoutLibrbd
			case "dm-crypt":
				o.Layout = encryption.LayoutDMCrypt
			default:
				return fmt.Errorf("--layout %q: librbd or dm-crypt", layout)
			}
			if kdf != "" {
				k, err := luks.ParseKDF(kdf)
				if err != nil {
					return fmt.Errorf("--kdf: %w", err)
				}
				o.KDF = k
			}
			pass, err := readPassphraseFile(args[2])
			if err != nil {
				return err
			}
			defer clear(pass)
			return r.withImage(cmd, args[0], -1, openWrite, func(ctx context.Context, _ *rbdSession, _ imageSpec, img *rbd.Image) error {
				vol, err := encryption.Format(ctx, img, pass, &o)
				if err != nil {
					return err
				}
				vol.Close()
				return nil
			})
		},
	}
	format.Flags().StringVar(&cipherAlg, "cipher-alg", "aes-256", "encryption algorithm: aes-128 or aes-256")
	format.Flags().StringVar(&layout, "layout", "librbd", "header layout: librbd or dm-crypt")
	format.Flags().BoolVar(&force, "force", false, "overwrite an existing LUKS header")
	format.Flags().StringVar(&kdf, "kdf", "", "keyslot KDF: argon2id|argon2i|pbkdf2[:KEY=VALUE,...] (default argon2id:iterations=3,memory=65536,parallel=4)")
	enc.AddCommand(format)
	return enc
}

// addEncryptionFlags gives nbd serve and map rbd-nbd's unlock options.
func addEncryptionFlags(c *cobra.Command) {
	c.Flags().String("encryption-format", "", "unlock the image: luks1, luks2 or luks (either)")
	c.Flags().String("encryption-passphrase-file", "", "the passphrase to unlock with (the whole `FILE`)")
}

// readPassphraseFile reads a passphrase file as rbd does: all of it.
func readPassphraseFile(path string) ([]byte, error) {
	b, err := encryption.PassphraseFile(path).Passphrase(context.Background(), encryption.Volume{})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// exportEncryption is what unlocks an export: from the command's flags,
// or, for "nbd recover" (which has no such flags), from the record a
// read-write map left.
type exportEncryption struct {
	Format         string `json:"format"`
	PassphraseFile string `json:"passphraseFile"`
}

func encryptionRecordPath(stateDir, image string) string {
	return filepath.Join(stateDir, "encryption", url.PathEscape(image)+".json")
}

// exportEncryptionFor decides how image is unlocked (nil: plaintext).
// stateDir is where map records it ("": serve, nothing recorded).
func exportEncryptionFor(cmd *cobra.Command, image string, readOnly bool, stateDir string) (*exportEncryption, error) {
	f := cmd.Flags().Lookup("encryption-format")
	if f == nil { // nbd recover: what the map recorded
		if stateDir == "" {
			return nil, nil
		}
		b, err := os.ReadFile(encryptionRecordPath(stateDir, image))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var e exportEncryption
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("encryption record of %s: %w", image, err)
		}
		return &e, nil
	}
	format := f.Value.String()
	file, _ := cmd.Flags().GetString("encryption-passphrase-file")
	recording := cmd.Name() == "map" && !readOnly && stateDir != ""
	if format == "" {
		if file != "" {
			return nil, errors.New("--encryption-passphrase-file needs --encryption-format")
		}
		if recording {
			_ = os.Remove(encryptionRecordPath(stateDir, image)) // a plain map now
		}
		return nil, nil
	}
	switch format {
	case "luks", "luks1", "luks2":
	default:
		return nil, fmt.Errorf("--encryption-format %q: luks1, luks2 or luks", format)
	}
	if file == "" {
		return nil, errors.New("--encryption-format needs --encryption-passphrase-file")
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	e := &exportEncryption{Format: format, PassphraseFile: abs}
	if recording {
		b, _ := json.Marshal(e)
		p := encryptionRecordPath(stateDir, image)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// unlockExport unlocks b when the command asks for it (or, recovering,
// when the map did).
func unlockExport(ctx context.Context, cmd *cobra.Command, b *rbdbackend.Backend, image string, readOnly bool, stateDir string) error {
	e, err := exportEncryptionFor(cmd, image, readOnly, stateDir)
	if err != nil || e == nil {
		return err
	}
	pass, err := readPassphraseFile(e.PassphraseFile)
	if err != nil {
		return err
	}
	defer clear(pass)
	if err := b.Encrypt(ctx, pass, nil); err != nil {
		return err
	}
	if v := b.Encrypted().Header().Version(); e.Format != "luks" && e.Format != fmt.Sprintf("luks%d", v) {
		return fmt.Errorf("%s: --encryption-format %s, but the image is LUKS%d: %w", image, e.Format, v, luks.ErrInvalid)
	}
	return nil
}
