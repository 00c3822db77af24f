package mon

import (
	"fmt"
	"sort"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// maxMons bounds the number of monitors accepted in a MonMap (the kernel
// uses CEPH_MAX_MON = 31).
const maxMons = 31

// MonInfo is one monitor of a MonMap (mon_info_t).
type MonInfo struct {
	Name     string
	Addrs    entity.AddrVec
	Priority uint16
	Weight   uint16
}

// MonMap is the decoded monitor map. Fields that only monitors use
// (features, stretch mode, election strategy) are skipped.
type MonMap struct {
	FSID          [16]byte
	Epoch         uint32
	LastChanged   time.Time
	Created       time.Time
	Mons          []MonInfo // in rank order when the map carries ranks, else by name
	MinMonRelease uint8     // 0 when absent (struct_v < 7)
	StructVersion uint8
}

// DecodeMonMap decodes a MonMap as the monitors encode it for Nautilus+
// peers (struct_v >= 6; Pacific..Tentacle write v9, compat 6). Older
// encodings are rejected. Fields after min_mon_release are skipped by the
// struct envelope.
func DecodeMonMap(b []byte) (*MonMap, error) {
	d := encoding.NewDecoder(b)
	s, h := d.Struct(6)
	if err := d.Err(); err != nil {
		return nil, decodeErr("monmap", err)
	}
	if h.Version < 6 {
		return nil, fmt.Errorf("%w: monmap struct_v %d predates Nautilus", ErrBadMessage, h.Version)
	}
	m := &MonMap{StructVersion: h.Version}
	m.FSID = s.UUID()
	m.Epoch = s.U32()
	m.LastChanged = s.Timespec()
	m.Created = s.Timespec()
	s.Struct(255) // persistent_features (mon_feature_t)
	s.Struct(255) // optional_features
	n := s.Count(4 + 6)
	if n > maxMons {
		s.Fail("monmap mons", fmt.Errorf("%w: %d monitors", encoding.ErrBadLength, n))
	}
	byName := make(map[string]int, n)
	for i := 0; i < n && s.Err() == nil; i++ {
		key := s.String()
		mi, _ := s.Struct(255)
		info := MonInfo{Name: mi.String()}
		info.Addrs = entity.DecodeAddrVec(mi)
		if mi.Len() >= 2 {
			info.Priority = mi.U16()
		}
		if mi.Len() >= 2 {
			info.Weight = mi.U16()
		}
		if info.Name == "" {
			info.Name = key
		}
		byName[key] = len(m.Mons)
		m.Mons = append(m.Mons, info)
	}
	ranks := s.Strings()
	if h.Version >= 7 {
		m.MinMonRelease = s.U8()
	}
	if err := d.Err(); err != nil {
		return nil, decodeErr("monmap", err)
	}
	if len(m.Mons) == 0 {
		return nil, fmt.Errorf("%w: monmap has no monitors", ErrBadMessage)
	}
	// Order by rank when the ranks vector names every monitor.
	if len(ranks) == len(m.Mons) {
		ordered := make([]MonInfo, 0, len(ranks))
		seen := map[string]bool{}
		for _, r := range ranks {
			i, ok := byName[r]
			if !ok || seen[r] {
				ordered = nil
				break
			}
			seen[r] = true
			ordered = append(ordered, m.Mons[i])
		}
		if ordered != nil {
			m.Mons = ordered
		}
	} else {
		sort.SliceStable(m.Mons, func(i, j int) bool { return m.Mons[i].Name < m.Mons[j].Name })
	}
	return m, nil
}

// FSIDString formats the fsid as a UUID.
func (m *MonMap) FSIDString() string { return FormatUUID(m.FSID) }

// FormatUUID formats 16 bytes as 8-4-4-4-12 hex.
func FormatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
