package mon

import (
	"fmt"
	"sort"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// SubscribeOneTime is CEPH_SUBSCRIBE_ONETIME: send one map, then forget.
const SubscribeOneTime uint8 = 1

// MMonSubscribe header version: v3 adds the client hostname
// (MMonSubscribe.h HEAD_VERSION 3, COMPAT_VERSION 1).
const (
	mmonSubscribeVersion = 3
	mmonSubscribeCompat  = 1
)

// SubItem is one subscription: send maps starting at Start (0 = just the
// latest), once or persistently.
type SubItem struct {
	Start uint64
	Flags uint8
}

// MMonSubscribe (CEPH_MSG_MON_SUBSCRIBE) registers interest in maps.
type MMonSubscribe struct {
	What     map[string]SubItem
	Hostname string
}

// Encode returns the v3 front: map<string, {u64 start, u8 flags}>, hostname.
func (m *MMonSubscribe) Encode() []byte {
	e := encoding.NewEncoder(nil)
	names := make([]string, 0, len(m.What))
	for k := range m.What {
		names = append(names, k)
	}
	sort.Strings(names) // a std::map on the other side; keep it canonical
	e.U32(uint32(len(names)))
	for _, n := range names {
		e.String(n)
		e.U64(m.What[n].Start)
		e.U8(m.What[n].Flags)
	}
	e.String(m.Hostname)
	return e.Bytes()
}

// DecodeMMonSubscribe decodes a front (used by tests and fuzzing).
func DecodeMMonSubscribe(front []byte, version uint16) (*MMonSubscribe, error) {
	d := encoding.NewDecoder(front)
	n := d.Count(4 + 9)
	m := &MMonSubscribe{What: make(map[string]SubItem, n)}
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m.What[k] = SubItem{Start: d.U64(), Flags: d.U8()}
	}
	if version >= 3 {
		m.Hostname = d.String()
	}
	return m, decodeErr("mon_subscribe", d.Err())
}

// MMonSubscribeAck (CEPH_MSG_MON_SUBSCRIBE_ACK) is a legacy renewal hint:
// u32 interval (seconds), fsid. Modern monitors keep subscriptions
// stateful, so the client only records it.
type MMonSubscribeAck struct {
	Interval uint32
	FSID     [16]byte
}

// DecodeMMonSubscribeAck decodes the front.
func DecodeMMonSubscribeAck(front []byte) (*MMonSubscribeAck, error) {
	d := encoding.NewDecoder(front)
	m := &MMonSubscribeAck{Interval: d.U32(), FSID: d.UUID()}
	return m, decodeErr("mon_subscribe_ack", d.Err())
}

func (s SubItem) String() string { return fmt.Sprintf("%d/%d", s.Start, s.Flags) }
