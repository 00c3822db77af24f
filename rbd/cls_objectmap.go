package rbd

// objectMapResizeArgs: u64 object_count, u8 default_state.
func objectMapResizeArgs(count uint64, state uint8) []byte {
	e := enc()
	e.U64(count)
	e.U8(state)
	return e.B
}

// objectMapUpdateArgs: u64 start_object_no, u64 end_object_no (exclusive),
// u8 new_state, optional<u8> current_state (update only objects in that
// state).
func objectMapUpdateArgs(start, end uint64, state uint8, current *uint8) []byte {
	e := enc()
	e.U64(start)
	e.U64(end)
	e.U8(state)
	if current == nil {
		e.U8(0)
	} else {
		e.U8(1)
		e.U8(*current)
	}
	return e.B
}
