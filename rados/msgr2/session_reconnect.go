package msgr2

import (
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Session frames (SESSION_RECONNECT and its answers) resume a lossless
// session. Mon and OSD client sessions are lossy, so a client never sends
// SESSION_RECONNECT; the codecs exist to decode what a server might send
// and report it as a typed error (see DecodeSessionFrame).

// SessionReconnect is the SESSION_RECONNECT payload.
type SessionReconnect struct {
	Addrs        entity.AddrVec
	ClientCookie uint64
	ServerCookie uint64
	GlobalSeq    uint64
	ConnectSeq   uint64
	MsgSeq       uint64
}

// Encode appends the payload to dst.
func (s *SessionReconnect) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	s.Addrs.Encode(e)
	e.U64(s.ClientCookie)
	e.U64(s.ServerCookie)
	e.U64(s.GlobalSeq)
	e.U64(s.ConnectSeq)
	e.U64(s.MsgSeq)
	return e.Bytes()
}

// Decode decodes the payload.
func (s *SessionReconnect) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	s.Addrs = entity.DecodeAddrVec(d)
	s.ClientCookie = d.U64()
	s.ServerCookie = d.U64()
	s.GlobalSeq = d.U64()
	s.ConnectSeq = d.U64()
	s.MsgSeq = d.U64()
	return payloadErr(TagSessionReconnect, d.Err())
}
