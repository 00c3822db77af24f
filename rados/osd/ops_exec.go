package osd

// Call runs the method of an object class (cls) on the OSD with input in.
// Out holds the method's output. Use CallWrite for methods that modify the
// object, so the request is sent as a write (with the snap context).
func Call(class, method string, in []byte) Op {
	o := Op{Code: OpCall}
	o.Args[0] = uint8(len(class))
	o.Args[1] = uint8(len(method))
	o.put32(3, uint32(len(in)))
	b := make([]byte, 0, len(class)+len(method)+len(in))
	b = append(b, class...)
	b = append(b, method...)
	b = append(b, in...)
	o.In = b
	return o
}

// CallWrite is Call for a class method that writes.
func CallWrite(class, method string, in []byte) Op {
	o := Call(class, method, in)
	o.write = true
	return o
}
