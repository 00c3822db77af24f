package osdmap

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/crush"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// ErrMalformed is wrapped by errors for maps that decode but make no sense
// (inconsistent vector lengths, unknown pool types, ...).
var ErrMalformed = errors.New("osdmap: malformed map")

// ErrBadCRC is wrapped when a map's or incremental's crc does not match.
var ErrBadCRC = errors.New("osdmap: bad crc")

// ErrNoPool is returned when placing into a pool the map does not have.
var ErrNoPool = errors.New("osdmap: no such pool")

// OSDMap-wide flags (CEPH_OSDMAP_*).
const (
	FlagNearFull    = 1 << 0
	FlagFull        = 1 << 1
	FlagPauseRead   = 1 << 2
	FlagPauseWrite  = 1 << 3
	FlagSortBitwise = 1 << 15
)

// OSD state bits (CEPH_OSD_*).
const (
	StateExists  = 1 << 0
	StateUp      = 1 << 1
	StateAutoOut = 1 << 2
	StateNew     = 1 << 3
)

// Weight and affinity constants (16.16 fixed point).
const (
	WeightIn               = 0x10000
	WeightOut              = 0
	DefaultPrimaryAffinity = 0x10000
	maxPrimaryAffinity     = 0x10000
	maxOSDs                = 1 << 20 // sanity bound on max_osd
)

// UpmapItem replaces From with To in a pg's raw set.
type UpmapItem struct {
	From, To int32
}

// BlocklistEntry is a blocklisted client address and when the entry expires.
type BlocklistEntry struct {
	Addr    entity.Addr
	Expires time.Time
}

// OSDMap is a decoded OSDMap: the client data in full, plus the blocklist
// from the OSD-only section when it can be read.
type OSDMap struct {
	FSID     [16]byte
	Epoch    uint32
	Created  time.Time
	Modified time.Time

	Pools     map[int64]*Pool
	PoolNames map[int64]string
	PoolMax   int32
	Flags     uint32

	MaxOSD          int32
	OSDState        []uint32
	OSDWeight       []uint32
	OSDAddrs        []entity.AddrVec // client (public) addresses
	PrimaryAffinity []uint32         // nil when every OSD has the default

	PGTemp           map[PG][]int32
	PrimaryTemp      map[PG]int32
	PGUpmap          map[PG][]int32
	PGUpmapItems     map[PG][]UpmapItem
	PGUpmapPrimaries map[PG]int32

	Crush               *crush.Map
	ErasureCodeProfiles map[string]map[string]string
	CrushVersion        int32
	NewRemovedSnaps     map[int64][]SnapInterval
	NewPurgedSnaps      map[int64][]SnapInterval
	LastUpChange        time.Time
	LastInChange        time.Time

	// Blocklist is decoded best effort from the OSD-only section; nil when
	// that section could not be read.
	Blocklist []BlocklistEntry

	ClientVersion uint8  // client-data struct_v (9 Pacific/Quincy, 10 Reef+)
	CRC           uint32 // the map's crc, verified by Decode
	HasCRC        bool

	workspaces sync.Pool
}

// Decode parses a full OSDMap (OSDMap::encode with the v8 wrapper, client
// data v7..v10) and verifies its crc.
func Decode(b []byte) (*OSDMap, error) { return decodeFull(b, true) }

// decodeFull is Decode; fuzzing turns the crc check off to reach the fields.
func decodeFull(b []byte, verifyCRC bool) (*OSDMap, error) {
	d := encoding.NewDecoder(b)
	m := &OSDMap{}
	w, h := d.Struct(7)
	if err := d.Err(); err != nil {
		return nil, err
	}
	if h.Version < 7 {
		return nil, fmt.Errorf("%w: pre-Jewel (classic) osdmap encoding v%d", encoding.ErrIncompatible, h.Version)
	}
	cd, ch := w.Struct(10)
	if w.Err() != nil {
		return nil, w.Err()
	}
	m.ClientVersion = ch.Version
	if err := m.decodeClient(cd, ch.Version); err != nil {
		return nil, err
	}
	od, _ := w.Struct(255)
	if w.Err() != nil {
		return nil, w.Err()
	}
	m.Blocklist = decodeOSDOnlyBlocklist(od.Rest())
	if h.Version >= 8 {
		crcStart := w.Offset()
		m.CRC = w.U32()
		if err := w.Err(); err != nil {
			return nil, err
		}
		m.HasCRC = true
		end := w.Offset() + w.Len()
		actual := encoding.CRC32C(0xffffffff, b[:crcStart])
		actual = encoding.CRC32C(actual, b[crcStart+4:end])
		if verifyCRC && actual != m.CRC {
			return nil, fmt.Errorf("%w: map epoch %d crc %#x, computed %#x", ErrBadCRC, m.Epoch, m.CRC, actual)
		}
	}
	return m, nil
}

func (m *OSDMap) decodeClient(d *encoding.Decoder, v uint8) error {
	m.FSID = d.UUID()
	m.Epoch = d.U32()
	m.Created = d.Timespec()
	m.Modified = d.Timespec()
	n := d.Count(8 + 6)
	m.Pools = make(map[int64]*Pool, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		id := d.I64()
		p := DecodePool(d)
		if p != nil {
			m.Pools[id] = p
		}
	}
	n = d.Count(12)
	m.PoolNames = make(map[int64]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		id := d.I64()
		m.PoolNames[id] = d.String()
	}
	m.PoolMax = d.I32()
	m.Flags = d.U32()
	m.MaxOSD = d.I32()
	if d.Err() != nil {
		return d.Err()
	}
	if m.MaxOSD < 0 || m.MaxOSD > maxOSDs {
		return fmt.Errorf("%w: max_osd %d", ErrMalformed, m.MaxOSD)
	}
	if v >= 5 {
		m.OSDState = decodeU32s(d)
	} else {
		n := d.Count(1)
		m.OSDState = make([]uint32, n)
		for i := range m.OSDState {
			m.OSDState[i] = uint32(d.U8())
		}
	}
	m.OSDWeight = decodeU32s(d)
	n = d.Count(1)
	m.OSDAddrs = make([]entity.AddrVec, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		m.OSDAddrs = append(m.OSDAddrs, entity.DecodeAddrVec(d))
	}
	m.PGTemp = decodePGVecMap(d)
	m.PrimaryTemp = decodePGI32Map(d)
	if v >= 2 {
		m.PrimaryAffinity = decodeU32s(d)
		if len(m.PrimaryAffinity) == 0 {
			m.PrimaryAffinity = nil
		}
	}
	cb := d.Bytes()
	if d.Err() != nil {
		return d.Err()
	}
	cm, err := crush.Decode(cb)
	if err != nil {
		return fmt.Errorf("osdmap epoch %d: crush: %w", m.Epoch, err)
	}
	m.Crush = cm
	if v >= 3 {
		m.ErasureCodeProfiles = decodeProfiles(d)
	}
	if v >= 4 {
		m.PGUpmap = decodePGVecMap(d)
		m.PGUpmapItems = decodeUpmapItems(d)
	}
	if v >= 6 {
		m.CrushVersion = d.I32()
	}
	if v >= 7 {
		m.NewRemovedSnaps = decodeSnapMap(d)
		m.NewPurgedSnaps = decodeSnapMap(d)
	}
	if v >= 9 {
		m.LastUpChange = d.Timespec()
		m.LastInChange = d.Timespec()
	}
	if v >= 10 {
		m.PGUpmapPrimaries = decodePGI32Map(d)
	}
	if err := d.Err(); err != nil {
		return err
	}
	return m.check()
}

// check enforces the invariants placement relies on.
func (m *OSDMap) check() error {
	n := int(m.MaxOSD)
	if len(m.OSDState) != n || len(m.OSDWeight) != n || len(m.OSDAddrs) != n {
		return fmt.Errorf("%w: max_osd %d but %d states, %d weights, %d addrs",
			ErrMalformed, n, len(m.OSDState), len(m.OSDWeight), len(m.OSDAddrs))
	}
	if m.PrimaryAffinity != nil && len(m.PrimaryAffinity) != n {
		return fmt.Errorf("%w: max_osd %d but %d primary affinities", ErrMalformed, n, len(m.PrimaryAffinity))
	}
	return nil
}

func decodeU32s(d *encoding.Decoder) []uint32 {
	n := d.Count(4)
	out := make([]uint32, n)
	for i := range out {
		out[i] = d.U32()
	}
	return out
}

func decodeI32s(d *encoding.Decoder) []int32 {
	n := d.Count(4)
	out := make([]int32, n)
	for i := range out {
		out[i] = d.I32()
	}
	return out
}

func decodePGVecMap(d *encoding.Decoder) map[PG][]int32 {
	n := d.Count(pgSize + 4)
	m := make(map[PG][]int32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		pg := decodePG(d)
		m[pg] = decodeI32s(d)
	}
	return m
}

func decodePGI32Map(d *encoding.Decoder) map[PG]int32 {
	n := d.Count(pgSize + 4)
	m := make(map[PG]int32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		pg := decodePG(d)
		m[pg] = d.I32()
	}
	return m
}

func decodePGSet(d *encoding.Decoder) []PG {
	n := d.Count(pgSize)
	out := make([]PG, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		out = append(out, decodePG(d))
	}
	return out
}

func decodeUpmapItems(d *encoding.Decoder) map[PG][]UpmapItem {
	n := d.Count(pgSize + 4)
	m := make(map[PG][]UpmapItem, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		pg := decodePG(d)
		c := d.Count(8)
		items := make([]UpmapItem, c)
		for j := range items {
			items[j] = UpmapItem{From: d.I32(), To: d.I32()}
		}
		m[pg] = items
	}
	return m
}

func decodeProfiles(d *encoding.Decoder) map[string]map[string]string {
	n := d.Count(8)
	m := make(map[string]map[string]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = decodeStringMap(d)
	}
	return m
}

func decodeSnapMap(d *encoding.Decoder) map[int64][]SnapInterval {
	n := d.Count(12)
	m := make(map[int64][]SnapInterval, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I64()
		m[k] = decodeIntervals(d)
	}
	return m
}

// decodeOSDOnlyBlocklist reads the blocklist from the OSD-only section of a
// full map: hb_back_addrs, osd_info, then the blocklist. Any failure gives
// nil; the section is not needed for placement.
func decodeOSDOnlyBlocklist(b []byte) []BlocklistEntry {
	d := encoding.NewDecoder(b)
	n := d.Count(1)
	for i := 0; i < n && d.Err() == nil; i++ {
		entity.DecodeAddrVec(d)
	}
	n = d.Count(25)
	d.Skip(25 * n) // osd_info_t: u8 struct_v + six epochs
	bl := decodeBlocklist(d)
	if d.Err() != nil {
		return nil
	}
	return bl
}

func decodeBlocklist(d *encoding.Decoder) []BlocklistEntry {
	n := d.Count(9)
	out := make([]BlocklistEntry, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		a := entity.DecodeAddr(d)
		out = append(out, BlocklistEntry{Addr: a, Expires: d.Timespec()})
	}
	return out
}

// Exists reports whether osd is a known OSD.
func (m *OSDMap) Exists(osd int32) bool {
	return osd >= 0 && osd < m.MaxOSD && m.OSDState[osd]&StateExists != 0
}

// IsUp reports whether osd exists and is up.
func (m *OSDMap) IsUp(osd int32) bool {
	return m.Exists(osd) && m.OSDState[osd]&StateUp != 0
}

// IsIn reports whether osd exists and has a non-zero weight.
func (m *OSDMap) IsIn(osd int32) bool {
	return m.Exists(osd) && m.OSDWeight[osd] != WeightOut
}

// Addrs returns the client addresses of osd, or nil.
func (m *OSDMap) Addrs(osd int32) entity.AddrVec {
	if osd < 0 || int(osd) >= len(m.OSDAddrs) {
		return nil
	}
	return m.OSDAddrs[osd]
}

// PoolByName returns the id of the named pool.
func (m *OSDMap) PoolByName(name string) (int64, bool) {
	for id, n := range m.PoolNames {
		if n == name {
			return id, true
		}
	}
	return 0, false
}

// IsBlocklisted reports whether addr is on the blocklist, as
// OSDMap::is_blocklisted checks it: the exact instance (ip, port, nonce) or
// the whole ip (an entry with port 0 and nonce 0). Expiry is not checked:
// the monitors remove expired entries. Range entries are not decoded.
func (m *OSDMap) IsBlocklisted(a entity.Addr) bool {
	for _, e := range m.Blocklist {
		if e.Addr.IP.Addr() != a.IP.Addr() {
			continue
		}
		if e.Addr.IP.Port() == a.IP.Port() && e.Addr.Nonce == a.Nonce {
			return true
		}
		if e.Addr.IP.Port() == 0 && e.Addr.Nonce == 0 {
			return true
		}
	}
	return false
}
