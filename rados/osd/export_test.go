package osd

// FrameKey names a captured OSD message by type and first op code (or
// watch-notify opcode), so captures keep one frame per kind.
func FrameKey(typ uint16, version uint16, front, data []byte) string {
	switch typ {
	case MsgOSDOp:
		if m, err := decodeOSDOp(front, data); err == nil && len(m.Ops) > 0 {
			return m.Ops[0].Code.String()
		}
	case MsgOSDOpReply:
		if r, err := decodeOSDOpReply(front, data, version); err == nil && len(r.Ops) > 0 {
			return r.Ops[0].Code.String()
		}
	case MsgWatchNotify:
		if len(front) > 1 {
			return []string{"0", "notify", "complete", "disconnect"}[min(int(front[1]), 3)]
		}
	}
	return "x"
}
