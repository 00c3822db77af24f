package mon

import (
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Message type ids (CEPH_MSG_* / MSG_* in include/ceph_fs.h and msg/Message.h).
const (
	MsgMonMap            uint16 = 4
	MsgMonGetMap         uint16 = 5
	MsgMonSubscribe      uint16 = 15
	MsgMonSubscribeAck   uint16 = 16
	MsgAuth              uint16 = 17
	MsgAuthReply         uint16 = 18
	MsgMonGetVersion     uint16 = 19
	MsgMonGetVersionRply uint16 = 20
	MsgOSDMap            uint16 = 41
	MsgPoolOpReply       uint16 = 48
	MsgPoolOp            uint16 = 49
	MsgMonCommand        uint16 = 50
	MsgMonCommandAck     uint16 = 51
	MsgConfig            uint16 = 62
)

// ErrBadMessage is wrapped by every message decode error.
var ErrBadMessage = errors.New("mon: malformed message")

func decodeErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s: %w", ErrBadMessage, what, err)
}

// PaxosHeader starts every PaxosServiceMessage front: the version the
// sender has (0 from clients), the deprecated session_mon (-1) and
// session_mon_tid (0).
type PaxosHeader struct {
	Version       uint64
	SessionMon    int16
	SessionMonTid uint64
}

func encodePaxos(e *encoding.Encoder, version uint64) {
	e.U64(version)
	e.I16(-1)
	e.U64(0)
}

func decodePaxos(d *encoding.Decoder) PaxosHeader {
	return PaxosHeader{Version: d.U64(), SessionMon: d.I16(), SessionMonTid: d.U64()}
}
