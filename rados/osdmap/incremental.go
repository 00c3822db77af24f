package osdmap

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/crush"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Incremental is a decoded OSDMap::Incremental: the changes from epoch-1
// to Epoch.
type Incremental struct {
	FSID       [16]byte
	Epoch      uint32
	Modified   time.Time
	NewPoolMax int64
	NewFlags   int32 // -1: unchanged

	// FullMap, when set, replaces the whole map (encoded full OSDMap).
	FullMap []byte
	// Crush, when set, is a replacement CRUSH map (encoded).
	Crush []byte

	NewMaxOSD    int32 // -1: unchanged
	NewPools     map[int64]*Pool
	NewPoolNames map[int64]string
	OldPools     []int64

	NewUpClient        map[int32]entity.AddrVec
	NewState           map[int32]uint32 // xor masks; 0 means UP for legacy reasons
	NewWeight          map[int32]uint32
	NewPGTemp          map[PG][]int32 // empty vector removes
	NewPrimaryTemp     map[PG]int32   // -1 removes
	NewPrimaryAffinity map[int32]uint32

	NewErasureCodeProfiles map[string]map[string]string
	OldErasureCodeProfiles []string

	NewPGUpmap          map[PG][]int32
	OldPGUpmap          []PG
	NewPGUpmapItems     map[PG][]UpmapItem
	OldPGUpmapItems     []PG
	NewRemovedSnaps     map[int64][]SnapInterval
	NewPurgedSnaps      map[int64][]SnapInterval
	NewLastUpChange     time.Time
	NewLastInChange     time.Time
	NewPGUpmapPrimaries map[PG]int32
	OldPGUpmapPrimaries []PG

	// From the OSD-only section, best effort.
	NewBlocklist []BlocklistEntry
	OldBlocklist []entity.Addr

	ClientVersion uint8
	IncCRC        uint32 // verified by DecodeIncremental
	FullCRC       uint32 // crc of the resulting full map (not checked)
	HasCRC        bool
}

// DecodeIncremental parses an encoded OSDMap::Incremental (wrapper v8,
// client data up to v9) and verifies its own crc.
func DecodeIncremental(b []byte) (*Incremental, error) { return decodeIncremental(b, true) }

func decodeIncremental(b []byte, verifyCRC bool) (*Incremental, error) {
	d := encoding.NewDecoder(b)
	w, h := d.Struct(7)
	if err := d.Err(); err != nil {
		return nil, err
	}
	if h.Version < 7 {
		return nil, fmt.Errorf("%w: pre-Jewel (classic) incremental encoding v%d", encoding.ErrIncompatible, h.Version)
	}
	inc := &Incremental{}
	cd, ch := w.Struct(9)
	if w.Err() != nil {
		return nil, w.Err()
	}
	inc.ClientVersion = ch.Version
	inc.decodeClient(cd, ch.Version)
	if err := d.Err(); err != nil {
		return nil, err
	}
	od, _ := w.Struct(255)
	if w.Err() != nil {
		return nil, w.Err()
	}
	inc.decodeOSDOnly(od.Rest())
	if h.Version >= 8 {
		crcStart := w.Offset()
		inc.IncCRC = w.U32()
		tail := w.Offset()
		inc.FullCRC = w.U32()
		if err := w.Err(); err != nil {
			return nil, err
		}
		inc.HasCRC = true
		end := w.Offset() + w.Len()
		actual := encoding.CRC32C(0xffffffff, b[:crcStart])
		actual = encoding.CRC32C(actual, b[tail:end])
		if verifyCRC && actual != inc.IncCRC {
			return nil, fmt.Errorf("%w: incremental epoch %d crc %#x, computed %#x", ErrBadCRC, inc.Epoch, inc.IncCRC, actual)
		}
	}
	return inc, nil
}

func (inc *Incremental) decodeClient(d *encoding.Decoder, v uint8) {
	inc.FSID = d.UUID()
	inc.Epoch = d.U32()
	inc.Modified = d.Timespec()
	inc.NewPoolMax = d.I64()
	inc.NewFlags = d.I32()
	inc.FullMap = d.Bytes()
	inc.Crush = d.Bytes()
	inc.NewMaxOSD = d.I32()
	n := d.Count(8 + 6)
	inc.NewPools = make(map[int64]*Pool, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		id := d.I64()
		if p := DecodePool(d); p != nil {
			inc.NewPools[id] = p
		}
	}
	n = d.Count(12)
	inc.NewPoolNames = make(map[int64]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		id := d.I64()
		inc.NewPoolNames[id] = d.String()
	}
	n = d.Count(8)
	inc.OldPools = make([]int64, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		inc.OldPools = append(inc.OldPools, d.I64())
	}
	n = d.Count(5)
	inc.NewUpClient = make(map[int32]entity.AddrVec, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		o := d.I32()
		inc.NewUpClient[o] = entity.DecodeAddrVec(d)
	}
	n = d.Count(5)
	inc.NewState = make(map[int32]uint32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		o := d.I32()
		if v >= 5 {
			inc.NewState[o] = d.U32()
		} else {
			inc.NewState[o] = uint32(d.U8())
		}
	}
	inc.NewWeight = decodeI32U32Map(d)
	inc.NewPGTemp = decodePGVecMap(d)
	inc.NewPrimaryTemp = decodePGI32Map(d)
	if v >= 2 {
		inc.NewPrimaryAffinity = decodeI32U32Map(d)
	}
	if v >= 3 {
		inc.NewErasureCodeProfiles = decodeProfiles(d)
		inc.OldErasureCodeProfiles = d.Strings()
	}
	if v >= 4 {
		inc.NewPGUpmap = decodePGVecMap(d)
		inc.OldPGUpmap = decodePGSet(d)
		inc.NewPGUpmapItems = decodeUpmapItems(d)
		inc.OldPGUpmapItems = decodePGSet(d)
	}
	if v >= 6 {
		inc.NewRemovedSnaps = decodeSnapMap(d)
		inc.NewPurgedSnaps = decodeSnapMap(d)
	}
	if v >= 8 {
		inc.NewLastUpChange = d.Timespec()
		inc.NewLastInChange = d.Timespec()
	}
	if v >= 9 {
		inc.NewPGUpmapPrimaries = decodePGI32Map(d)
		inc.OldPGUpmapPrimaries = decodePGSet(d)
	}
}

// decodeOSDOnly reads the blocklist changes from the OSD-only section:
// new_hb_back_up, new_up_thru, new_last_clean_interval, new_lost, then
// new_blocklist and old_blocklist. Failures leave them empty.
func (inc *Incremental) decodeOSDOnly(b []byte) {
	d := encoding.NewDecoder(b)
	n := d.Count(5)
	for i := 0; i < n && d.Err() == nil; i++ {
		d.I32()
		entity.DecodeAddrVec(d)
	}
	d.Skip(8 * d.Count(8))   // new_up_thru: osd, epoch
	d.Skip(12 * d.Count(12)) // new_last_clean_interval: osd, (epoch, epoch)
	d.Skip(8 * d.Count(8))   // new_lost
	nb := decodeBlocklist(d)
	n = d.Count(9)
	var old []entity.Addr
	for i := 0; i < n && d.Err() == nil; i++ {
		old = append(old, entity.DecodeAddr(d))
	}
	if d.Err() != nil {
		return
	}
	inc.NewBlocklist, inc.OldBlocklist = nb, old
}

func decodeI32U32Map(d *encoding.Decoder) map[int32]uint32 {
	n := d.Count(8)
	m := make(map[int32]uint32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I32()
		m[k] = d.U32()
	}
	return m
}

// Apply returns the map that results from applying inc to m, following
// OSDMap::apply_incremental for the client-visible state. m is not
// modified. inc must be for epoch m.Epoch+1 and the same cluster.
func (m *OSDMap) Apply(inc *Incremental) (*OSDMap, error) {
	if inc.Epoch != m.Epoch+1 {
		return nil, fmt.Errorf("osdmap: incremental for epoch %d cannot follow %d", inc.Epoch, m.Epoch)
	}
	if inc.FSID != m.FSID && m.Epoch != 0 {
		return nil, fmt.Errorf("osdmap: incremental fsid differs from the map's")
	}
	if len(inc.FullMap) > 0 {
		return Decode(inc.FullMap)
	}
	n := m.clone()
	n.Epoch = inc.Epoch
	n.Modified = inc.Modified
	if inc.NewFlags >= 0 {
		n.Flags = uint32(inc.NewFlags)
	}
	if inc.NewMaxOSD >= 0 {
		if inc.NewMaxOSD > maxOSDs {
			return nil, fmt.Errorf("%w: new max_osd %d", ErrMalformed, inc.NewMaxOSD)
		}
		n.setMaxOSD(inc.NewMaxOSD)
	}
	n.applyPools(inc)
	if err := n.applyOSDWeights(inc); err != nil {
		return nil, err
	}
	n.applyErasureCodeProfiles(inc)
	if err := n.applyOSDStates(inc); err != nil {
		return nil, err
	}
	n.applyPGMappings(inc)
	n.applyBlocklist(inc)
	// The new CRUSH map comes last, as in Ceph.
	if len(inc.Crush) > 0 {
		cm, err := crush.Decode(inc.Crush)
		if err != nil {
			return nil, fmt.Errorf("incremental epoch %d: crush: %w", inc.Epoch, err)
		}
		n.Crush = cm
		n.CrushVersion++
	}
	return n, n.check()
}

// applyPools applies the pool changes: pool_max, new and changed pools
// (their last_change becomes this epoch), removed snaps, the up/in change
// stamps, pool names and removed pools.
func (n *OSDMap) applyPools(inc *Incremental) {
	if inc.NewPoolMax != -1 {
		n.PoolMax = int32(inc.NewPoolMax)
	}
	for id, p := range inc.NewPools {
		cp := *p
		cp.LastChange = n.Epoch
		n.Pools[id] = &cp
	}
	n.NewRemovedSnaps = inc.NewRemovedSnaps
	n.NewPurgedSnaps = inc.NewPurgedSnaps
	if !inc.NewLastUpChange.IsZero() && inc.NewLastUpChange.Unix() != 0 {
		n.LastUpChange = inc.NewLastUpChange
	}
	if !inc.NewLastInChange.IsZero() && inc.NewLastInChange.Unix() != 0 {
		n.LastInChange = inc.NewLastInChange
	}
	maps.Copy(n.PoolNames, inc.NewPoolNames)
	for _, id := range inc.OldPools {
		delete(n.Pools, id)
		delete(n.PoolNames, id)
	}
}

// applyOSDWeights applies new OSD weights and primary affinities.
func (n *OSDMap) applyOSDWeights(inc *Incremental) error {
	valid := func(o int32) bool { return o >= 0 && o < n.MaxOSD }
	for o, w := range inc.NewWeight {
		if !valid(o) {
			return fmt.Errorf("%w: weight for osd.%d beyond max_osd %d", ErrMalformed, o, n.MaxOSD)
		}
		n.OSDWeight[o] = w
		if w != 0 {
			n.OSDState[o] |= StateExists
			n.OSDState[o] &^= StateAutoOut | StateNew
		}
	}
	for o, a := range inc.NewPrimaryAffinity {
		if !valid(o) {
			return fmt.Errorf("%w: affinity for osd.%d beyond max_osd %d", ErrMalformed, o, n.MaxOSD)
		}
		n.setPrimaryAffinity(o, a)
	}
	return nil
}

// applyErasureCodeProfiles removes and adds erasure code profiles.
func (n *OSDMap) applyErasureCodeProfiles(inc *Incremental) {
	for _, name := range inc.OldErasureCodeProfiles {
		delete(n.ErasureCodeProfiles, name)
	}
	for name, prof := range inc.NewErasureCodeProfiles {
		if n.ErasureCodeProfiles == nil {
			n.ErasureCodeProfiles = map[string]map[string]string{}
		}
		n.ErasureCodeProfiles[name] = prof
	}
}

// applyOSDStates applies the OSD state bits (XOR, as Ceph does; a
// destroyed OSD is forgotten) and the new client addresses of OSDs that
// came up.
func (n *OSDMap) applyOSDStates(inc *Incremental) error {
	valid := func(o int32) bool { return o >= 0 && o < n.MaxOSD }
	for o, x := range inc.NewState {
		if !valid(o) {
			return fmt.Errorf("%w: state for osd.%d beyond max_osd %d", ErrMalformed, o, n.MaxOSD)
		}
		s := x
		if s == 0 {
			s = StateUp
		}
		if n.OSDState[o]&StateExists != 0 && s&StateExists != 0 {
			// The OSD was destroyed: forget everything about it.
			n.setPrimaryAffinity(o, DefaultPrimaryAffinity)
			n.OSDAddrs[o] = nil
			n.OSDState[o] = 0
		} else {
			n.OSDState[o] ^= s
		}
	}
	for o, a := range inc.NewUpClient {
		if !valid(o) {
			return fmt.Errorf("%w: address for osd.%d beyond max_osd %d", ErrMalformed, o, n.MaxOSD)
		}
		n.OSDState[o] |= StateExists | StateUp
		n.OSDAddrs[o] = a
	}
	return nil
}

// applyPGMappings applies pg_temp, primary_temp and the upmap tables.
func (n *OSDMap) applyPGMappings(inc *Incremental) {
	for pg, v := range inc.NewPGTemp {
		if len(v) == 0 {
			delete(n.PGTemp, pg)
		} else {
			n.PGTemp[pg] = v
		}
	}
	for pg, o := range inc.NewPrimaryTemp {
		if o == -1 {
			delete(n.PrimaryTemp, pg)
		} else {
			n.PrimaryTemp[pg] = o
		}
	}
	maps.Copy(n.PGUpmap, inc.NewPGUpmap)
	for _, pg := range inc.OldPGUpmap {
		delete(n.PGUpmap, pg)
	}
	maps.Copy(n.PGUpmapItems, inc.NewPGUpmapItems)
	for _, pg := range inc.OldPGUpmapItems {
		delete(n.PGUpmapItems, pg)
	}
	maps.Copy(n.PGUpmapPrimaries, inc.NewPGUpmapPrimaries)
	for _, pg := range inc.OldPGUpmapPrimaries {
		delete(n.PGUpmapPrimaries, pg)
	}
}

// applyBlocklist removes and adds blocklist entries.
func (n *OSDMap) applyBlocklist(inc *Incremental) {
	if n.Blocklist != nil || len(inc.NewBlocklist) > 0 {
		n.Blocklist = slices.DeleteFunc(n.Blocklist, func(e BlocklistEntry) bool {
			for _, a := range inc.OldBlocklist {
				if a.Equal(e.Addr) {
					return true
				}
			}
			return false
		})
		n.Blocklist = append(n.Blocklist, inc.NewBlocklist...)
	}
}

// clone copies everything Apply mutates; pools and CRUSH are shared
// (Apply replaces them whole rather than editing them).
func (m *OSDMap) clone() *OSDMap {
	n := &OSDMap{
		FSID: m.FSID, Epoch: m.Epoch, Created: m.Created, Modified: m.Modified,
		Pools:               maps.Clone(m.Pools),
		PoolNames:           maps.Clone(m.PoolNames),
		PoolMax:             m.PoolMax,
		Flags:               m.Flags,
		MaxOSD:              m.MaxOSD,
		OSDState:            slices.Clone(m.OSDState),
		OSDWeight:           slices.Clone(m.OSDWeight),
		OSDAddrs:            slices.Clone(m.OSDAddrs),
		PrimaryAffinity:     slices.Clone(m.PrimaryAffinity),
		PGTemp:              maps.Clone(m.PGTemp),
		PrimaryTemp:         maps.Clone(m.PrimaryTemp),
		PGUpmap:             maps.Clone(m.PGUpmap),
		PGUpmapItems:        maps.Clone(m.PGUpmapItems),
		PGUpmapPrimaries:    maps.Clone(m.PGUpmapPrimaries),
		Crush:               m.Crush,
		ErasureCodeProfiles: maps.Clone(m.ErasureCodeProfiles),
		CrushVersion:        m.CrushVersion,
		NewRemovedSnaps:     m.NewRemovedSnaps,
		NewPurgedSnaps:      m.NewPurgedSnaps,
		LastUpChange:        m.LastUpChange,
		LastInChange:        m.LastInChange,
		Blocklist:           slices.Clone(m.Blocklist),
		ClientVersion:       m.ClientVersion,
	}
	if n.Pools == nil {
		n.Pools = map[int64]*Pool{}
	}
	if n.PoolNames == nil {
		n.PoolNames = map[int64]string{}
	}
	if n.PGTemp == nil {
		n.PGTemp = map[PG][]int32{}
	}
	if n.PrimaryTemp == nil {
		n.PrimaryTemp = map[PG]int32{}
	}
	if n.PGUpmap == nil {
		n.PGUpmap = map[PG][]int32{}
	}
	if n.PGUpmapItems == nil {
		n.PGUpmapItems = map[PG][]UpmapItem{}
	}
	if n.PGUpmapPrimaries == nil {
		n.PGUpmapPrimaries = map[PG]int32{}
	}
	return n
}

// setMaxOSD is OSDMap::set_max_osd for the client fields: new OSDs start
// nonexistent, out, without address and with default affinity.
func (m *OSDMap) setMaxOSD(n int32) {
	resize := func(s []uint32, fill uint32) []uint32 {
		for int32(len(s)) < n {
			s = append(s, fill)
		}
		return s[:n]
	}
	m.OSDState = resize(m.OSDState, 0)
	m.OSDWeight = resize(m.OSDWeight, WeightOut)
	if m.PrimaryAffinity != nil {
		m.PrimaryAffinity = resize(m.PrimaryAffinity, DefaultPrimaryAffinity)
	}
	for int32(len(m.OSDAddrs)) < n {
		m.OSDAddrs = append(m.OSDAddrs, nil)
	}
	m.OSDAddrs = m.OSDAddrs[:n]
	m.MaxOSD = n
}

// setPrimaryAffinity is OSDMap::set_primary_affinity: the vector is created
// on the first non-default value.
func (m *OSDMap) setPrimaryAffinity(o int32, a uint32) {
	if m.PrimaryAffinity == nil {
		if a == DefaultPrimaryAffinity {
			return
		}
		m.PrimaryAffinity = make([]uint32, m.MaxOSD)
		for i := range m.PrimaryAffinity {
			m.PrimaryAffinity[i] = DefaultPrimaryAffinity
		}
	}
	m.PrimaryAffinity[o] = a
}
