package osdmap

import (
	"strconv"
)

// AppendOSDs appends a vector the way Ceph prints vector<int>: "[1,2,3]",
// with ItemNone as 2147483647.
func AppendOSDs(b []byte, osds []int32) []byte {
	b = append(b, '[')
	for i, o := range osds {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(o), 10)
	}
	return append(b, ']')
}

// AppendDumpLine appends the line osdmaptool --test-map-pgs-dump-all prints
// for a pg, without the newline:
//
//	1.0 raw ([0,1,2], p0) up ([0,1,2], p0) acting ([0,1,2], p0)
func (mp *Mapping) AppendDumpLine(b []byte) []byte {
	b = append(b, mp.PG.String()...)
	set := func(b []byte, name string, osds []int32, p int32) []byte {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, " ("...)
		b = AppendOSDs(b, osds)
		b = append(b, ", p"...)
		b = strconv.AppendInt(b, int64(p), 10)
		return append(b, ')')
	}
	b = set(b, "raw", mp.Raw, mp.RawPrimary)
	b = set(b, "up", mp.Up, mp.UpPrimary)
	return set(b, "acting", mp.Acting, mp.ActingPrimary)
}

// SetUp marks an existing OSD up (osdmaptool --mark-up).
func (m *OSDMap) SetUp(osd int32) {
	if osd >= 0 && osd < m.MaxOSD {
		m.OSDState[osd] |= StateUp
	}
}

// SetWeight sets an OSD's in/out weight (osdmaptool --mark-in/--mark-out).
// Like OSDMap::set_weight, a non-zero weight makes the OSD exist.
func (m *OSDMap) SetWeight(osd int32, w uint32) {
	if osd >= 0 && osd < m.MaxOSD {
		m.OSDWeight[osd] = w
		if w != 0 {
			m.OSDState[osd] |= StateExists
		}
	}
}
