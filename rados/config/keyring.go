package config

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Keyring files, read as Ceph reads a plain-text keyring
// (KeyRing::decode_plaintext): the ceph.conf syntax of Parse (comments
// from ';' or '#', quoted values, continued lines, "caps mon" ==
// "caps_mon"), one section per entity. [global] is skipped; every other
// section must name an entity as EntityName::from_str does, TYPE.ID with
// a known type and a possibly empty id ([mon.], [osd.0], [client.admin]).
// A section holds "key = <base64>" and "caps <service> = <caps>" lines;
// other settings (auid, ...) are ignored. Keys are not decoded here: that
// is cephx's job.

// KeyringEntry is one entity of a keyring.
type KeyringEntry struct {
	Name entity.Name
	Key  string            // base64 secret as written; "" when the section has none
	Caps map[string]string // service ("mon", "osd", ...) → caps
}

// MaxKeyringSize bounds a keyring file.
const MaxKeyringSize = 1 << 20

// ParseKeyring parses keyring file contents into its entities, in file
// order.
func ParseKeyring(data []byte) ([]KeyringEntry, error) {
	if len(data) > MaxKeyringSize {
		return nil, fmt.Errorf("%w: keyring of %d bytes is too large", ErrSyntax, len(data))
	}
	f, err := parse(bytes.NewReader(data), true)
	if err != nil {
		return nil, err
	}
	var out []KeyringEntry
	for _, sec := range f.SectionNames() {
		if sec == "global" {
			continue
		}
		n, err := keyringEntity(sec)
		if err != nil {
			return nil, err
		}
		e := KeyringEntry{Name: n, Caps: map[string]string{}}
		keys := make([]string, 0, len(f.Sections[sec]))
		for k := range f.Sections[sec] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := f.Sections[sec][k]
			switch svc, isCaps := strings.CutPrefix(k, "caps_"); {
			case k == "key":
				e.Key = strings.TrimSpace(v)
			case isCaps && svc != "":
				e.Caps[svc] = v
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// keyringEntity parses a keyring section name: TYPE.ID with a known
// type; unlike a client name the id may be empty ("mon.").
func keyringEntity(s string) (entity.Name, error) {
	typ, id, ok := strings.Cut(s, ".")
	if !ok {
		return entity.Name{}, fmt.Errorf("%w: bad entity name %q in keyring", ErrSyntax, s)
	}
	n, err := entity.ParseName(typ + ".x") // the type alone
	if err != nil {
		return entity.Name{}, fmt.Errorf("%w: bad entity name %q in keyring", ErrSyntax, s)
	}
	return entity.Name{Type: n.Type, ID: id}, nil
}
