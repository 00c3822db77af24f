package luks

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// LUKS2 JSON metadata. 64-bit quantities are decimal strings; keyslot,
// segment, digest and token ids are decimal object keys. Only what this
// package uses is modelled; tokens are kept verbatim so that rewriting a
// header made by cryptsetup keeps them.

// u64 is a uint64 stored as a JSON decimal string.
type u64 uint64

func (v u64) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatUint(uint64(v), 10))
}

func (v *u64) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*v = u64(n)
	return nil
}

// parseDecimal accepts only digits (cryptsetup's "numbered" check).
func parseDecimal(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// segSize is a segment size: "dynamic" (to the end of the device, 0
// here) or a decimal byte count.
type segSize uint64

func (v segSize) MarshalJSON() ([]byte, error) {
	if v == 0 {
		return json.Marshal("dynamic")
	}
	return u64(v).MarshalJSON()
}

func (v *segSize) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == "dynamic" {
		*v = 0
		return nil
	}
	n, err := parseDecimal(s)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("segment size 0")
	}
	*v = segSize(n)
	return nil
}

type metadata struct {
	Keyslots map[string]*jsonKeyslot    `json:"keyslots"`
	Tokens   map[string]json.RawMessage `json:"tokens"`
	Segments map[string]*jsonSegment    `json:"segments"`
	Digests  map[string]*jsonDigest     `json:"digests"`
	Config   *jsonConfig                `json:"config"`
}

type jsonKeyslot struct {
	Type     string    `json:"type"`
	KeySize  int       `json:"key_size"`
	AF       *jsonAF   `json:"af,omitempty"`
	Area     *jsonArea `json:"area"`
	KDF      *jsonKDF  `json:"kdf,omitempty"`
	Priority *int      `json:"priority,omitempty"`
}

type jsonAF struct {
	Type    string `json:"type"`
	Stripes int    `json:"stripes"`
	Hash    string `json:"hash"`
}

type jsonArea struct {
	Type       string `json:"type"`
	Offset     u64    `json:"offset"`
	Size       u64    `json:"size"`
	Encryption string `json:"encryption,omitempty"`
	KeySize    int    `json:"key_size,omitempty"`
}

type jsonKDF struct {
	Type       string `json:"type"`
	Hash       string `json:"hash,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	Time       int    `json:"time,omitempty"`
	Memory     int    `json:"memory,omitempty"`
	CPUs       int    `json:"cpus,omitempty"`
	Salt       []byte `json:"salt"`
}

type jsonSegment struct {
	Type       string          `json:"type"`
	Offset     u64             `json:"offset"`
	Size       segSize         `json:"size"`
	IVTweak    u64             `json:"iv_tweak"`
	Encryption string          `json:"encryption"`
	SectorSize int             `json:"sector_size"`
	Integrity  json.RawMessage `json:"integrity,omitempty"`
	Flags      []string        `json:"flags,omitempty"`
}

type jsonDigest struct {
	Type       string   `json:"type"`
	Keyslots   []string `json:"keyslots"`
	Segments   []string `json:"segments"`
	Hash       string   `json:"hash"`
	Iterations int      `json:"iterations"`
	Salt       []byte   `json:"salt"`
	Digest     []byte   `json:"digest"`
}

type jsonConfig struct {
	JSONSize     u64               `json:"json_size"`
	KeyslotsSize u64               `json:"keyslots_size"`
	Flags        []string          `json:"flags,omitempty"`
	Requirements *jsonRequirements `json:"requirements,omitempty"`
}

type jsonRequirements struct {
	Mandatory []string `json:"mandatory,omitempty"`
}

// maxObjects is LUKS2's limit on keyslots, segments, digests and tokens.
const maxObjects = 32

// objectID parses a decimal object key below maxObjects.
func objectID(key string) (int, error) {
	n, err := parseDecimal(key)
	if err != nil || n >= maxObjects {
		return 0, fmt.Errorf("object id %q", key)
	}
	return int(n), nil
}

func sortedIDs[T any](m map[string]T) []int {
	ids := make([]int, 0, len(m))
	for k := range m {
		if id, err := objectID(k); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	return ids
}

// validate checks the metadata against the binary header's size the way
// cryptsetup's LUKS2_hdr_validate does for the parts this package uses,
// and refuses what it cannot open (ErrUnsupported). hdrSize is the
// binary hdr_size.
func (m *metadata) validate(hdrSize uint64) error {
	if m.Keyslots == nil || m.Tokens == nil || m.Segments == nil || m.Digests == nil || m.Config == nil {
		return fmt.Errorf("%w: metadata lacks keyslots, tokens, segments, digests or config", ErrCorrupt)
	}
	c := m.Config
	if uint64(c.JSONSize) != hdrSize-binHeaderLen {
		return fmt.Errorf("%w: json_size %d, binary header says %d", ErrCorrupt, c.JSONSize, hdrSize-binHeaderLen)
	}
	if c.KeyslotsSize%4096 != 0 || c.KeyslotsSize > maxKeyslotsSz {
		return fmt.Errorf("%w: keyslots_size %d", ErrCorrupt, c.KeyslotsSize)
	}
	areasEnd := 2*hdrSize + uint64(c.KeyslotsSize)
	if c.Requirements != nil && len(c.Requirements.Mandatory) > 0 {
		return fmt.Errorf("%w: mandatory requirements %q (reencryption or newer format)", ErrUnsupported, c.Requirements.Mandatory)
	}
	for k := range m.Tokens {
		if _, err := objectID(k); err != nil {
			return fmt.Errorf("%w: token %v", ErrCorrupt, err)
		}
	}
	type span struct{ off, end uint64 }
	var areas []span
	for k, ks := range m.Keyslots {
		if _, err := objectID(k); err != nil {
			return fmt.Errorf("%w: keyslot %v", ErrCorrupt, err)
		}
		if ks == nil || ks.Type == "" || ks.Area == nil || ks.KeySize < 0 {
			return fmt.Errorf("%w: keyslot %s incomplete", ErrCorrupt, k)
		}
		a := ks.Area
		if a.Size == 0 || uint64(a.Offset) < 2*hdrSize || uint64(a.Offset) > areasEnd || uint64(a.Size) > areasEnd-uint64(a.Offset) {
			return fmt.Errorf("%w: keyslot %s area [%d,+%d) outside the keyslots area [%d,%d)", ErrCorrupt, k, a.Offset, a.Size, 2*hdrSize, areasEnd)
		}
		for _, o := range areas {
			if uint64(a.Offset) < o.end && o.off < uint64(a.Offset+a.Size) {
				return fmt.Errorf("%w: keyslot %s area overlaps another", ErrCorrupt, k)
			}
		}
		areas = append(areas, span{uint64(a.Offset), uint64(a.Offset + a.Size)})
	}
	if len(m.Segments) < 1 {
		return fmt.Errorf("%w: no segments", ErrCorrupt)
	}
	for k, s := range m.Segments {
		if _, err := objectID(k); err != nil {
			return fmt.Errorf("%w: segment %v", ErrCorrupt, err)
		}
		if s == nil || s.Type == "" {
			return fmt.Errorf("%w: segment %s incomplete", ErrCorrupt, k)
		}
		if s.Offset%512 != 0 || s.Size%512 != 0 {
			return fmt.Errorf("%w: segment %s offset %d size %d not 512-aligned", ErrCorrupt, k, s.Offset, s.Size)
		}
		if s.Type == "crypt" {
			if s.SectorSize <= 0 || s.SectorSize%512 != 0 || (s.Size != 0 && uint64(s.Size)%uint64(s.SectorSize) != 0) {
				return fmt.Errorf("%w: segment %s sector size %d", ErrCorrupt, k, s.SectorSize)
			}
			if uint64(s.Offset) != 0 && uint64(s.Offset) < areasEnd {
				return fmt.Errorf("%w: segment %s at %d overlaps the keyslots area (ends %d)", ErrCorrupt, k, s.Offset, areasEnd)
			}
		}
	}
	for k, d := range m.Digests {
		if _, err := objectID(k); err != nil {
			return fmt.Errorf("%w: digest %v", ErrCorrupt, err)
		}
		if d == nil || d.Type == "" {
			return fmt.Errorf("%w: digest %s incomplete", ErrCorrupt, k)
		}
		for _, ks := range d.Keyslots {
			if m.Keyslots[ks] == nil {
				return fmt.Errorf("%w: digest %s names missing keyslot %q", ErrCorrupt, k, ks)
			}
		}
		for _, sg := range d.Segments {
			if m.Segments[sg] == nil {
				return fmt.Errorf("%w: digest %s names missing segment %q", ErrCorrupt, k, sg)
			}
		}
	}
	return nil
}
