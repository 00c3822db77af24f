package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"

	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// Image metadata keys of the metadata KMS (ceph-csi's; the dotted one is
// its older name, still read).
const (
	MetaDEK       = "rbd.csi.ceph.com/dek"
	MetaDEKLegacy = ".rbd.csi.ceph.com/dek"
)

// Entry keys of the metadata type.
const (
	sectionSecretName      = "secretName"
	sectionSecretNamespace = "secretNamespace"
)

// passphraseBytes is the entropy of a generated volume passphrase; the
// passphrase is its URL-safe base64 (28 characters), as ceph-csi makes it.
const passphraseBytes = 20

// scrypt parameters of the key that seals a volume passphrase.
const (
	scryptN = 32768
	scryptR = 8
	scryptP = 1
)

// maxSealed bounds a stored sealed passphrase read back from an image.
const maxSealed = 4096

// metadataStore is ceph-csi's "metadata" KMS.
type metadataStore struct {
	id   string
	wrap []byte // the wrapping passphrase
	from string // where wrap came from, for messages
}

func newMetadata(ctx context.Context, a Args) (Store, error) {
	name, haveName, err := a.Section.String(sectionSecretName)
	if err != nil {
		return nil, fmt.Errorf("encryptionKMSID %q: %w", a.KMSID, err)
	}
	if !haveName || name == "" {
		p, err := a.passphraseFromSecrets()
		if err != nil {
			return nil, fmt.Errorf("encryptionKMSID %q (type metadata, no secretName): %w", a.KMSID, err)
		}
		return &metadataStore{id: a.KMSID, wrap: p, from: a.secretsName() + "'s " + SecretPassphraseKey}, nil
	}
	ns, _, err := a.Section.String(sectionSecretNamespace)
	if err != nil {
		return nil, fmt.Errorf("encryptionKMSID %q: %w", a.KMSID, err)
	}
	if ns == "" {
		ns = a.Tenant
	}
	if ns == "" {
		return nil, fmt.Errorf("%w: encryptionKMSID %q names Secret %q without secretNamespace, and the volume has no owner namespace to look in",
			ErrConfig, a.KMSID, name)
	}
	where := fmt.Sprintf("Secret %s/%s", ns, name)
	if a.Kube == nil {
		return nil, fmt.Errorf("%w: encryptionKMSID %q needs %s, and this plugin has no Kubernetes API access", ErrSecret, a.KMSID, where)
	}
	data, err := a.Kube.Secret(ctx, ns, name)
	if err != nil {
		return nil, fmt.Errorf("%w: encryptionKMSID %q: reading %s: %v", ErrSecret, a.KMSID, where, err)
	}
	p := data[SecretPassphraseKey]
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: %s (encryptionKMSID %q) has no %s", ErrSecret, where, a.KMSID, SecretPassphraseKey)
	}
	return &metadataStore{id: a.KMSID, wrap: p, from: where + "'s " + SecretPassphraseKey}, nil
}

func (s *metadataStore) ID() string      { return s.id }
func (s *metadataStore) PerVolume() bool { return true }

func (s *metadataStore) Source() string {
	return fmt.Sprintf("the volume's passphrase in image metadata %s, sealed with %s (encryptionKMSID %q)", MetaDEK, s.from, s.id)
}

// sealed is the stored form: AES-256-GCM ciphertext with its tag, and the
// nonce (JSON []byte: standard base64).
type sealed struct {
	DEK   []byte `json:"dek"`
	Nonce []byte `json:"nonce"`
}

// aead derives the sealing key of one volume: the salt is its CSI id.
func (s *metadataStore) aead(volID string) (cipher.AEAD, error) {
	if volID == "" {
		return nil, fmt.Errorf("kms: a metadata store needs the volume id")
	}
	key, err := scrypt.Key(s.wrap, []byte(volID), scryptN, scryptR, scryptP, 32)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal returns the stored form of pass for the volume id (what
// ceph-csi's EncryptDEK writes).
func (s *metadataStore) seal(volID string, pass []byte) ([]byte, error) {
	a, err := s.aead(volID)
	if err != nil {
		return nil, err
	}
	sl := sealed{Nonce: make([]byte, a.NonceSize())}
	if _, err := rand.Read(sl.Nonce); err != nil {
		return nil, err
	}
	sl.DEK = a.Seal(nil, sl.Nonce, pass, nil)
	return json.Marshal(&sl)
}

func (s *metadataStore) open(volID string, stored []byte) ([]byte, error) {
	if len(stored) > maxSealed {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(stored))
	}
	var sl sealed
	if err := json.Unmarshal(stored, &sl); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	a, err := s.aead(volID)
	if err != nil {
		return nil, err
	}
	if len(sl.Nonce) != a.NonceSize() {
		return nil, fmt.Errorf("%w: nonce of %d bytes", ErrCorrupt, len(sl.Nonce))
	}
	p, err := a.Open(nil, sl.Nonce, sl.DEK, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not open the passphrase sealed in %s of volume %s (changed, or not the one it was sealed with)",
			ErrWrongPassphrase, s.from, MetaDEK, volID)
	}
	return p, nil
}

func (s *metadataStore) Passphrase(ctx context.Context, v encryption.Volume) ([]byte, error) {
	if v.Meta == nil {
		return nil, fmt.Errorf("kms: metadata store: volume %s has no image metadata", v.ID)
	}
	b, err := v.Meta.GetMetadata(ctx, MetaDEK)
	if errors.Is(err, rbd.ErrNotFound) {
		b, err = v.Meta.GetMetadata(ctx, MetaDEKLegacy)
	}
	if errors.Is(err, rbd.ErrNotFound) {
		return nil, fmt.Errorf("%w: image %s of volume %s has no %s (encryptionKMSID %q)", ErrNoKey, v.Image, v.ID, MetaDEK, s.id)
	}
	if err != nil {
		return nil, err
	}
	return s.open(v.ID, b)
}

func (s *metadataStore) NewPassphrase(ctx context.Context, v encryption.Volume) ([]byte, error) {
	var r [passphraseBytes]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	p := []byte(base64.URLEncoding.EncodeToString(r[:]))
	clear(r[:])
	if err := s.StorePassphrase(ctx, v, p); err != nil {
		clear(p)
		return nil, err
	}
	return p, nil
}

func (s *metadataStore) StorePassphrase(ctx context.Context, v encryption.Volume, pass []byte) error {
	if v.Meta == nil {
		return fmt.Errorf("kms: metadata store: volume %s has no image metadata", v.ID)
	}
	b, err := s.seal(v.ID, pass)
	if err != nil {
		return err
	}
	if err := v.Meta.SetMetadata(ctx, MetaDEK, b); err != nil {
		return fmt.Errorf("kms: storing the sealed passphrase of volume %s: %w", v.ID, err)
	}
	return nil
}
