package cephx

// Ceph keyring files: INI-like sections named after entities, each with a
// "key = <base64 CryptoKey>" line. Caps lines and unknown settings are ignored.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Keyring maps entity names ("client.admin") to their keys.
type Keyring map[string]*CryptoKey

const maxKeyringSize = 1 << 20

// ParseKeyring parses keyring file contents.
func ParseKeyring(data []byte) (Keyring, error) {
	if len(data) > maxKeyringSize {
		return nil, fmt.Errorf("%w: file of %d bytes is too large", ErrKeyring, len(data))
	}
	kr := Keyring{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxKeyringSize)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("%w: line %d: unterminated section", ErrKeyring, lineNo)
			}
			section = strings.TrimSpace(line[1:end])
			if _, err := entity.ParseName(section); err != nil || !strings.Contains(section, ".") {
				return nil, fmt.Errorf("%w: line %d: bad entity name %q", ErrKeyring, lineNo, section)
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: expected key = value", ErrKeyring, lineNo)
		}
		if strings.TrimSpace(k) != "key" {
			continue // caps mon = "...", auid = ..., etc.
		}
		if section == "" {
			return nil, fmt.Errorf("%w: line %d: key outside a section", ErrKeyring, lineNo)
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		key, err := ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: [%s]: %v", ErrKeyring, lineNo, section, err)
		}
		kr[section] = key
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyring, err)
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
