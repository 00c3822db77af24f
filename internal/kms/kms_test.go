package kms

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/scrypt"

	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

// memMeta is image metadata in memory.
type memMeta map[string][]byte

func (m memMeta) GetMetadata(_ context.Context, k string) ([]byte, error) {
	v, ok := m[k]
	if !ok {
		return nil, fmt.Errorf("%w: %s", rbd.ErrNotFound, k)
	}
	return v, nil
}

func (m memMeta) SetMetadata(_ context.Context, k string, v []byte) error {
	m[k] = bytes.Clone(v)
	return nil
}

// fakeKube serves Secrets from a map "ns/name".
type fakeKube map[string]map[string][]byte

func (f fakeKube) Secret(_ context.Context, ns, name string) (map[string][]byte, error) {
	d, ok := f[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("secrets %q not found", name)
	}
	return d, nil
}

func loader(t *testing.T, cfg string) Loader {
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return Loader{File: p}
}

// Volumes ceph-csi v3.12.2 made with a metadata KMS open here: the
// captured rbd.csi.ceph.com/dek of the volume, its snapshot (under the
// snapshot id) and the restore (under its own id) unseal with the
// captured secret and the captured KMS configuration, to one passphrase.
func TestCapturedDEKs(t *testing.T) {
	st, err := cephcsi.LoadState("../../test/cephcsi/testdata/v3.12.2/state.json")
	if err != nil {
		t.Fatal(err)
	}
	l := loader(t, string(st.KMSConfigJSON))
	var passes []string
	for _, c := range st.Calls {
		var req struct {
			Secrets    map[string]string `json:"secrets"`
			Parameters map[string]string `json:"parameters"`
		}
		var id string
		switch c.Method {
		case "CreateVolume":
			id, err = st.VolumeID(c.Step)
		case "CreateSnapshot":
			id, err = st.SnapshotID(c.Step)
		default:
			continue
		}
		if err != nil || st.Deleted(id) {
			continue
		}
		if err := json.Unmarshal(c.Request, &req); err != nil {
			t.Fatal(err)
		}
		h, err := cephcsi.ParseHandle(id)
		if err != nil {
			t.Fatal(err)
		}
		var meta memMeta
		for _, im := range st.Layout.Images {
			if strings.HasSuffix(im.Name, h.UUID) && im.Metadata[MetaDEK] != "" {
				meta = memMeta{MetaDEK: []byte(im.Metadata[MetaDEK])}
			}
		}
		if meta == nil {
			continue
		}
		s, err := Open(context.Background(), l, nil, Request{KMSID: "secrets-metadata", Secrets: req.Secrets})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Passphrase(context.Background(), encryption.Volume{ID: id, Meta: meta})
		if err != nil {
			t.Fatalf("%s: %v", c.Step, err)
		}
		if len(p) != 28 {
			t.Errorf("%s: passphrase of %d bytes, want 28", c.Step, len(p))
		}
		passes = append(passes, string(p))
		// The same sealed value under another id does not open.
		if _, err := s.Passphrase(context.Background(), encryption.Volume{ID: id + "x", Meta: meta}); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s under another id: %v, want ErrWrongPassphrase", c.Step, err)
		}
	}
	if len(passes) < 3 {
		t.Fatalf("opened %d captured DEKs, want the volume, its snapshot and the restore", len(passes))
	}
	for _, p := range passes[1:] {
		if p != passes[0] {
			t.Fatal("the snapshot's and restore's passphrase differ from the volume's")
		}
	}
}

// What the metadata store writes is what ceph-csi reads: JSON with
// exactly "dek" and "nonce", AES-256-GCM under scrypt(passphrase, id) —
// checked here with an independent opener — and a 28-character URL-safe
// base64 passphrase.
func TestMetadataSealFormat(t *testing.T) {
	ctx := context.Background()
	l := loader(t, `{"m": {"encryptionKMSType": "metadata"}}`)
	s, err := Open(ctx, l, nil, Request{KMSID: "m", Secrets: map[string]string{SecretPassphraseKey: "wrap-pass"}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.PerVolume() || s.ID() != "m" {
		t.Fatalf("PerVolume %v ID %q", s.PerVolume(), s.ID())
	}
	meta := memMeta{}
	const id = "0001-0004-test-0000000000000001-11111111-2222-3333-4444-555555555555"
	p, err := s.NewPassphrase(ctx, encryption.Volume{ID: id, Meta: meta})
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 28 || strings.ContainsAny(string(p), "+/") {
		t.Errorf("passphrase %d bytes, not URL-safe base64 of 20 bytes", len(p))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(meta[MetaDEK], &raw); err != nil || len(raw) != 2 || raw["dek"] == nil || raw["nonce"] == nil {
		t.Fatalf("stored %s is not {dek, nonce}: %v", meta[MetaDEK], err)
	}
	var sl struct{ DEK, Nonce []byte }
	if err := json.Unmarshal(meta[MetaDEK], &sl); err != nil {
		t.Fatal(err)
	}
	key, _ := scrypt.Key([]byte("wrap-pass"), []byte(id), 32768, 8, 1, 32)
	blk, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(blk)
	plain, err := aead.Open(nil, sl.Nonce, sl.DEK, nil)
	if err != nil || !bytes.Equal(plain, p) {
		t.Fatalf("independent open: %v", err)
	}
	back, err := s.Passphrase(ctx, encryption.Volume{ID: id, Meta: meta})
	if err != nil || !bytes.Equal(back, p) {
		t.Fatalf("Passphrase: %v", err)
	}
	// The legacy key is read when the new one is absent.
	old := memMeta{MetaDEKLegacy: meta[MetaDEK]}
	if back, err := s.Passphrase(ctx, encryption.Volume{ID: id, Meta: old}); err != nil || !bytes.Equal(back, p) {
		t.Fatalf("legacy key: %v", err)
	}
	// StorePassphrase seals a given passphrase for another id.
	meta2 := memMeta{}
	if err := s.StorePassphrase(ctx, encryption.Volume{ID: id + "-2", Meta: meta2}, p); err != nil {
		t.Fatal(err)
	}
	if back, err := s.Passphrase(ctx, encryption.Volume{ID: id + "-2", Meta: meta2}); err != nil || !bytes.Equal(back, p) {
		t.Fatalf("stored copy: %v", err)
	}
	if _, err := s.Passphrase(ctx, encryption.Volume{ID: id, Meta: memMeta{}}); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no DEK: %v", err)
	}
	if _, err := s.Passphrase(ctx, encryption.Volume{ID: id, Meta: memMeta{MetaDEK: []byte("{")}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad DEK: %v", err)
	}
}

// The default KMS: the secret is the passphrase; a volume cannot be given
// another.
func TestDefaultStore(t *testing.T) {
	ctx := context.Background()
	sec := map[string]string{SecretPassphraseKey: "sc-pass"}
	for _, id := range []string{"", DefaultID} {
		s, err := Open(ctx, Loader{}, nil, Request{KMSID: id, Secrets: sec})
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.NewPassphrase(ctx, encryption.Volume{ID: "v"})
		if err != nil || string(p) != "sc-pass" || s.PerVolume() {
			t.Fatalf("%q: %q %v", id, p, err)
		}
		if err := s.StorePassphrase(ctx, encryption.Volume{ID: "v"}, []byte("sc-pass")); err != nil {
			t.Fatal(err)
		}
		if err := s.StorePassphrase(ctx, encryption.Volume{ID: "v"}, []byte("other")); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("other passphrase: %v", err)
		}
	}
}

// Errors say which secret or entry to fix, and never show a passphrase.
func TestErrorsNameTheSecret(t *testing.T) {
	ctx := context.Background()
	l := loader(t, `{
		"meta": {"encryptionKMSType": "metadata"},
		"user-secret": {"encryptionKMSType": "metadata", "secretName": "storage-encryption-secret"},
		"user-ns-secret": {"encryptionKMSType": "metadata", "secretName": "s2", "secretNamespace": "kms"},
		"vault-test": {"encryptionKMSType": "vault", "vaultAddress": "http://vault:8200"},
		"tokens": {"KMS_PROVIDER": "vaulttokens"},
		"odd": {"encryptionKMSType": "rot13"},
		"untyped": {"secretName": "x"}
	}`)
	kube := fakeKube{
		"tenant/storage-encryption-secret": {SecretPassphraseKey: []byte("tenant-pass")},
		"kms/s2":                           {"other": []byte("x")},
	}
	node := "the node-stage secret"
	cases := []struct {
		req  Request
		want error
		msg  string
	}{
		{Request{SecretsName: node}, ErrSecret, "the node-stage secret has no encryptionPassphrase"},
		{Request{KMSID: "meta", SecretsName: node}, ErrSecret, "the node-stage secret has no encryptionPassphrase"},
		{Request{KMSID: "nope", SecretsName: node}, ErrConfig, "meta, odd, tokens, untyped, user-ns-secret, user-secret, vault-test"},
		{Request{KMSID: "vault-test"}, ErrUnsupported, `ceph-csi's KMS type "vault"; this driver implements default, metadata`},
		{Request{KMSID: "tokens"}, ErrUnsupported, `"vaulttokens"`},
		{Request{KMSID: "odd"}, ErrUnsupported, `unknown KMS type "rot13"`},
		{Request{KMSID: "untyped"}, ErrConfig, "encryptionKMSType"},
		{Request{KMSID: "user-secret", Tenant: "elsewhere"}, ErrSecret, "reading Secret elsewhere/storage-encryption-secret"},
		{Request{KMSID: "user-secret"}, ErrConfig, "no owner namespace"},
		{Request{KMSID: "user-ns-secret"}, ErrSecret, "Secret kms/s2 (encryptionKMSID \"user-ns-secret\") has no encryptionPassphrase"},
	}
	for _, c := range cases {
		_, err := Open(ctx, l, kube, c.req)
		if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.msg) {
			t.Errorf("%+v: %v, want %v containing %q", c.req, err, c.want, c.msg)
		}
	}
	// A Secret-backed entry seals with the Secret's passphrase; another
	// passphrase does not open it, and says whose.
	s, err := Open(ctx, l, kube, Request{KMSID: "user-secret", Tenant: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	meta := memMeta{}
	if _, err := s.NewPassphrase(ctx, encryption.Volume{ID: "vol", Meta: meta}); err != nil {
		t.Fatal(err)
	}
	kube["tenant/storage-encryption-secret"] = map[string][]byte{SecretPassphraseKey: []byte("rotated")}
	s2, err := Open(ctx, l, kube, Request{KMSID: "user-secret", Tenant: "tenant"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s2.Passphrase(ctx, encryption.Volume{ID: "vol", Meta: meta})
	if !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "Secret tenant/storage-encryption-secret's encryptionPassphrase") ||
		strings.Contains(err.Error(), "rotated") {
		t.Fatalf("wrong Secret: %v", err)
	}
}

// config.json and the ConfigMap form, and the file winning over the
// ConfigMap as in ceph-csi.
func TestConfigSources(t *testing.T) {
	ctx := context.Background()
	cm := func(context.Context) (map[string]string, error) {
		return map[string]string{"from-cm": `{"encryptionKMSType": "metadata"}`}, nil
	}
	c, err := Loader{File: filepath.Join(t.TempDir(), "absent.json"), ConfigMap: cm}.Load(ctx)
	if err != nil || c["from-cm"] == nil {
		t.Fatalf("ConfigMap fallback: %v %v", c, err)
	}
	l := loader(t, `{"from-file": {"encryptionKMSType": "metadata"}}`)
	l.ConfigMap = cm
	if c, err := l.Load(ctx); err != nil || c["from-file"] == nil || c["from-cm"] != nil {
		t.Fatalf("file first: %v %v", c, err)
	}
	if _, err := ParseConfigFile([]byte(`{"x": "not an object"}`)); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := ParseConfigMap(map[string]string{"x": "[]"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad ConfigMap: %v", err)
	}
	if c, err := (Loader{}).Load(ctx); err != nil || len(c) != 0 {
		t.Fatalf("no sources: %v %v", c, err)
	}
}
