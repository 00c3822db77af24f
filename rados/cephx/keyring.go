package cephx

// Ceph keyring files: config.ParseKeyring reads them as Ceph does (any
// number of entity sections, caps lines, comments, quoted values); this
// file decodes their keys.

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Keyring maps entity names ("client.admin", "mon.") to their keys.
// Sections without a key line (caps only) have no entry.
type Keyring map[string]*CryptoKey

// ParseKeyring parses keyring file contents. A section that cannot be
// read, or a key that does not decode, is an error as it is for Ceph.
func ParseKeyring(data []byte) (Keyring, error) {
	entries, err := config.ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyring, err)
	}
	kr := Keyring{}
	for _, e := range entries {
		if e.Key == "" {
			continue
		}
		key, err := ParseKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: [%s]: %v", ErrKeyring, e.Name, err)
		}
		kr[e.Name.String()] = key
	}
	return kr, nil
}

// LoadKeyring reads and parses a keyring file.
func LoadKeyring(path string) (Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyring, err)
	}
	kr, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kr, nil
}

// Get returns the key of an entity.
func (kr Keyring) Get(name entity.Name) (*CryptoKey, error) {
	if k := kr[name.String()]; k != nil {
		return k, nil
	}
	names := make([]string, 0, len(kr))
	for n := range kr {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, fmt.Errorf("%w: no key for %s (have %s)", ErrKeyring, name, strings.Join(names, ", "))
}

// LoadClient reads a keyring file and returns the cephx state for the named
// entity.
func LoadClient(keyringPath string, name entity.Name) (*Client, error) {
	kr, err := LoadKeyring(keyringPath)
	if err != nil {
		return nil, err
	}
	k, err := kr.Get(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyringPath, err)
	}
	return NewClient(name, k), nil
}
