package mon

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// Auth protocol ids (CEPH_AUTH_*).
const (
	AuthNone  uint32 = 1
	AuthCephx uint32 = 2
)

// MAuth (CEPH_MSG_AUTH, header v1): paxos header, u32 protocol, the
// protocol's request as a bufferlist, u32 monmap epoch. On an open msgr2
// session it carries cephx ticket renewals (GET_AUTH_SESSION_KEY) and
// service-ticket requests (GET_PRINCIPAL_SESSION_KEY).
type MAuth struct {
	Protocol    uint32
	Payload     []byte
	MonMapEpoch uint32
}

// Encode returns the front.
func (m *MAuth) Encode() []byte {
	e := encoding.NewEncoder(nil)
	encodePaxos(e, 0)
	e.U32(m.Protocol)
	e.Bytes32(m.Payload)
	e.U32(m.MonMapEpoch)
	return e.Bytes()
}

// MAuthReply (CEPH_MSG_AUTH_REPLY): u32 protocol, i32 result, u64
// global_id, the protocol's reply as a bufferlist, string result message.
type MAuthReply struct {
	Protocol uint32
	Result   int32
	GlobalID uint64
	Payload  []byte
	Message  string
}

// DecodeMAuthReply decodes the front.
func DecodeMAuthReply(front []byte) (*MAuthReply, error) {
	d := encoding.NewDecoder(front)
	m := &MAuthReply{Protocol: d.U32(), Result: d.I32(), GlobalID: d.U64(), Payload: d.BytesCopy()}
	if d.Len() > 0 {
		m.Message = d.String()
	}
	return m, decodeErr("auth_reply", d.Err())
}
