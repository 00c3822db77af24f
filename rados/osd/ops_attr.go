package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// xattr union: u32 name_len, u32 value_len, u8 cmp_op, u8 cmp_mode.
func xattrOp(code OpCode, name string, value []byte) Op {
	o := Op{Code: code}
	o.put32(0, uint32(len(name)))
	o.put32(4, uint32(len(value)))
	in := make([]byte, 0, len(name)+len(value))
	in = append(in, name...)
	in = append(in, value...)
	o.In = in
	return o
}

// GetXattr returns the value of one extended attribute in Out (ENODATA
// if it is not set).
func GetXattr(name string) Op { return xattrOp(OpGetXattr, name, nil) }

// GetXattrs returns all extended attributes; parse Out with ParseXattrs.
func GetXattrs() Op { return Op{Code: OpGetXattrs} }

// SetXattr sets an extended attribute.
func SetXattr(name string, value []byte) Op { return xattrOp(OpSetXattr, name, value) }

// RmXattr removes an extended attribute.
func RmXattr(name string) Op { return xattrOp(OpRmXattr, name, nil) }

// CmpXattr compares an attribute with value using op (CmpEQ...), failing
// the request with ECANCELED when the comparison is false.
func CmpXattr(name string, op uint8, value []byte) Op {
	o := xattrOp(OpCmpXattr, name, value)
	o.Args[8] = op
	o.Args[9] = CmpModeString
	return o
}

// CmpXattrU64 compares an attribute holding a decimal number with v.
func CmpXattrU64(name string, op uint8, v uint64) Op {
	e := encoding.NewEncoder(nil)
	e.U64(v)
	o := xattrOp(OpCmpXattr, name, e.Bytes())
	o.Args[8] = op
	o.Args[9] = CmpModeU64
	return o
}

// ParseXattrs decodes a GetXattrs op's output: map<string, bufferlist>.
// Values alias out.
func ParseXattrs(out []byte) (map[string][]byte, error) {
	m, _, err := parseStringMap(out, false)
	if err != nil {
		return nil, fmt.Errorf("getxattrs output: %w", err)
	}
	return m, nil
}

// parseStringMap reads map<string, bufferlist> and, with more, a trailing
// bool.
func parseStringMap(out []byte, more bool) (map[string][]byte, bool, error) {
	d := encoding.NewDecoder(out)
	n := d.Count(8)
	m := make(map[string][]byte, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = d.Bytes()
	}
	var mr bool
	if more && d.Len() > 0 {
		mr = d.Bool()
	}
	if err := d.Err(); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return m, mr, nil
}
