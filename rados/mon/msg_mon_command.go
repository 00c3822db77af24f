package mon

import "github.com/csi-gorbd/csi-gorbd/rados/encoding"

// maxCommandStrings bounds the cmd vector of an ack.
const maxCommandStrings = 1024

// MMonCommand (MSG_MON_COMMAND, header v1): paxos header, fsid and the
// command as a vector of strings (each a JSON document; monitors join
// them). Input bytes travel in the message's data segment.
type MMonCommand struct {
	FSID [16]byte
	Cmd  []string
}

// Encode returns the front.
func (m *MMonCommand) Encode() []byte {
	e := encoding.NewEncoder(nil)
	encodePaxos(e, 0)
	e.UUID(m.FSID)
	e.Strings(m.Cmd)
	return e.Bytes()
}

// MMonCommandAck (MSG_MON_COMMAND_ACK): paxos header, i32 result (a
// negative errno), string status text, the command echoed back. Output
// bytes travel in the data segment.
type MMonCommandAck struct {
	Result int32
	Status string
	Cmd    []string
}

// DecodeMMonCommandAck decodes the front.
func DecodeMMonCommandAck(front []byte) (*MMonCommandAck, error) {
	d := encoding.NewDecoder(front)
	decodePaxos(d)
	m := &MMonCommandAck{Result: d.I32(), Status: d.String()}
	if d.Len() > 0 { // the echoed command is informational
		m.Cmd = d.Strings()
		if len(m.Cmd) > maxCommandStrings {
			m.Cmd = m.Cmd[:maxCommandStrings]
		}
	}
	return m, decodeErr("mon_command_ack", d.Err())
}
