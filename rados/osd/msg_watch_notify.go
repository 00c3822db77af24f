package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Watch events (CEPH_WATCH_EVENT_*).
const (
	WatchEventNotify         uint8 = 1
	WatchEventNotifyComplete uint8 = 2
	WatchEventDisconnect     uint8 = 3
)

// watchNotify is an MWatchNotify (type 44).
type watchNotify struct {
	ProtoVer    uint8
	Opcode      uint8
	Cookie      uint64
	Ver         uint64
	NotifyID    uint64
	Payload     []byte // aliases the front
	ReturnCode  int32
	NotifierGID uint64
	Data        []byte // NOTIFY_COMPLETE: the acks buffer (data segment)
}

func decodeWatchNotify(front, data []byte, v uint16) (*watchNotify, error) {
	d := encoding.NewDecoder(front)
	w := &watchNotify{}
	w.ProtoVer = d.U8()
	w.Opcode = d.U8()
	w.Cookie = d.U64()
	w.Ver = d.U64()
	w.NotifyID = d.U64()
	if w.ProtoVer >= 1 {
		w.Payload = d.Bytes()
	}
	if v >= 2 {
		w.ReturnCode = d.I32()
	}
	if v >= 3 {
		w.NotifierGID = d.U64()
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w: MWatchNotify: %v", ErrProtocol, err)
	}
	w.Data = data
	return w, nil
}

func (w *watchNotify) encode() []byte {
	e := encoding.NewEncoder(nil)
	e.U8(w.ProtoVer)
	e.U8(w.Opcode)
	e.U64(w.Cookie)
	e.U64(w.Ver)
	e.U64(w.NotifyID)
	e.Bytes32(w.Payload)
	e.I32(w.ReturnCode)
	e.U64(w.NotifierGID)
	return e.Bytes()
}
