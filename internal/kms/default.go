package kms

import (
	"bytes"
	"context"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// defaultStore is ceph-csi's "default" KMS: the LUKS passphrase is the
// request secret's encryptionPassphrase itself, for every volume.
type defaultStore struct {
	req  Request
	pass []byte
}

func newDefault(_ context.Context, a Args) (Store, error) {
	p, err := a.passphraseFromSecrets()
	if err != nil {
		return nil, err
	}
	return &defaultStore{req: a.Request, pass: p}, nil
}

func (s *defaultStore) ID() string      { return DefaultID }
func (s *defaultStore) PerVolume() bool { return false }

func (s *defaultStore) Source() string {
	return fmt.Sprintf("%s key %s (encryptionKMSID %q)", s.req.secretsName(), SecretPassphraseKey, DefaultID)
}

func (s *defaultStore) Passphrase(context.Context, encryption.Volume) ([]byte, error) {
	return bytes.Clone(s.pass), nil
}

func (s *defaultStore) NewPassphrase(ctx context.Context, v encryption.Volume) ([]byte, error) {
	return s.Passphrase(ctx, v)
}

// StorePassphrase stores nothing: a volume of the default KMS opens with
// the secret, so pass must be the secret's passphrase.
func (s *defaultStore) StorePassphrase(_ context.Context, v encryption.Volume, pass []byte) error {
	if !bytes.Equal(pass, s.pass) {
		return fmt.Errorf("%w: volume %s would need another passphrase than %s's %s (the default KMS keeps none per volume)",
			ErrWrongPassphrase, v.ID, s.req.secretsName(), SecretPassphraseKey)
	}
	return nil
}
