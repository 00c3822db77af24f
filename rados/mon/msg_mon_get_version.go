package mon

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// MMonGetVersion (CEPH_MSG_MON_GET_VERSION) asks for the newest version
// of a map ("osdmap", "monmap", "mdsmap"). Handle is the request tid.
type MMonGetVersion struct {
	Handle uint64
	What   string
}

// Encode returns the front: u64 handle, string what (header v1).
func (m *MMonGetVersion) Encode() []byte {
	e := encoding.NewEncoder(nil)
	e.U64(m.Handle)
	e.String(m.What)
	return e.Bytes()
}

// MMonGetVersionReply (CEPH_MSG_MON_GET_VERSION_REPLY): u64 handle,
// u64 newest, and (header v2+) u64 oldest.
type MMonGetVersionReply struct {
	Handle uint64
	Newest uint64
	Oldest uint64
}

// DecodeMMonGetVersionReply decodes the front; version is the header version.
func DecodeMMonGetVersionReply(front []byte, version uint16) (*MMonGetVersionReply, error) {
	d := encoding.NewDecoder(front)
	m := &MMonGetVersionReply{Handle: d.U64(), Newest: d.U64()}
	if version >= 2 {
		m.Oldest = d.U64()
	}
	return m, decodeErr("mon_get_version_reply", d.Err())
}
