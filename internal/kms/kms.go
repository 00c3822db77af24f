package kms

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// DefaultID is the encryptionKMSID of StorageClasses that name none: the
// passphrase is the secret's encryptionPassphrase.
const DefaultID = "default"

// KMS types implemented here.
const (
	TypeDefault  = "default"
	TypeMetadata = "metadata"
)

// SecretPassphraseKey is the key of the passphrase in the CSI request
// secrets and in the Secrets a KMS entry names.
const SecretPassphraseKey = "encryptionPassphrase"

// Store yields the passphrases of encrypted volumes. Passphrase and
// NewPassphrase (encryption.PassphraseCreator) are called with the
// volume's CSI id as Volume.ID and its open image as Volume.Meta; the
// returned slices belong to the caller, who zeroes them.
type Store interface {
	encryption.PassphraseCreator
	// StorePassphrase keeps pass as the passphrase of vol (a snapshot,
	// restore or clone made from a volume whose passphrase is known).
	// Stores whose volumes share one passphrase check it is that one.
	StorePassphrase(ctx context.Context, vol encryption.Volume, pass []byte) error
	// PerVolume reports whether every volume has a passphrase of its own
	// (false: the one passphrase of the store, as the default type).
	PerVolume() bool
	// ID is the encryptionKMSID the store was opened for.
	ID() string
	// Source says where a volume's LUKS passphrase comes from, naming
	// the secret to fix when it does not unlock (never the passphrase).
	Source() string
}

// SecretReader reads a Kubernetes Secret's data (the Secrets a KMS entry
// names; the plugin's service account needs get on them).
type SecretReader interface {
	Secret(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// Request is what a store is opened with: the StorageClass's choice and
// the CSI request's secrets.
type Request struct {
	// KMSID is the encryptionKMSID ("" or DefaultID: the default type).
	KMSID string
	// Tenant is the volume's owner namespace (the PVC's): where a KMS
	// entry's secretName is looked up when it names no namespace.
	Tenant string
	// Secrets are the request's secrets; SecretsName says which they are
	// in messages (e.g. "the node-stage secret").
	Secrets     map[string]string
	SecretsName string
}

func (r Request) secretsName() string {
	if r.SecretsName != "" {
		return r.SecretsName
	}
	return "the request's secrets"
}

// passphraseFromSecrets returns the request secret's encryptionPassphrase.
func (r Request) passphraseFromSecrets() ([]byte, error) {
	p, ok := r.Secrets[SecretPassphraseKey]
	if !ok || p == "" {
		return nil, fmt.Errorf("%w: %s has no %s", ErrSecret, r.secretsName(), SecretPassphraseKey)
	}
	return []byte(p), nil
}

// Args are what a Factory builds a Store from.
type Args struct {
	Request
	// Section is the KMS entry (nil for the default type).
	Section Section
	// Kube reads Secrets (nil: no Kubernetes API).
	Kube SecretReader
}

// Factory makes a Store of one KMS type.
type Factory func(ctx context.Context, a Args) (Store, error)

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{TypeDefault: newDefault, TypeMetadata: newMetadata}
)

// Register adds a KMS type (a Vault or KMIP store, say). It panics when
// the type is registered already: registrations are made at init.
func Register(typ string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := factories[typ]; dup || typ == "" || f == nil {
		panic("kms: bad or duplicate registration of type " + typ)
	}
	factories[typ] = f
}

// Types lists the KMS types implemented, sorted.
func Types() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	t := make([]string, 0, len(factories))
	for k := range factories {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

// knownTypes are ceph-csi's other KMS types: named in the refusal so that
// a user knows the entry was understood and what is missing.
var knownTypes = map[string]bool{
	"vault": true, "vaulttokens": true, "vaulttenantsa": true, "kmip": true, "aws-metadata": true,
	"aws-sts-metadata": true, "azure-kv": true, "ibmkeyprotect": true, "hpcs": true,
}

// Open returns the Store for a request: the default type for an empty
// or "default" KMSID, else the entry of that id from the configuration
// l loads.
func Open(ctx context.Context, l Loader, kube SecretReader, req Request) (Store, error) {
	if req.KMSID == "" || req.KMSID == DefaultID {
		return newDefault(ctx, Args{Request: req})
	}
	cfg, err := l.Load(ctx)
	if err != nil {
		return nil, err
	}
	sec, ok := cfg[req.KMSID]
	if !ok {
		return nil, fmt.Errorf("%w: encryptionKMSID %q is not in %s (entries: %s)", ErrConfig, req.KMSID, l.describe(),
			strings.Join(cfg.IDs(), ", "))
	}
	typ, err := sec.Type()
	if err != nil {
		return nil, fmt.Errorf("encryptionKMSID %q: %w", req.KMSID, err)
	}
	regMu.RLock()
	f := factories[typ]
	regMu.RUnlock()
	if f == nil {
		what := "unknown"
		if knownTypes[typ] {
			what = "ceph-csi's"
		}
		return nil, fmt.Errorf("%w: encryptionKMSID %q has %s KMS type %q; this driver implements %s",
			ErrUnsupported, req.KMSID, what, typ, strings.Join(Types(), ", "))
	}
	return f(ctx, Args{Request: req, Section: sec, Kube: kube})
}
