package osd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// AllNamespaces is librados' all_nspaces: list objects in every namespace.
const AllNamespaces = "\x01"

// PGNLS lists up to max objects of one pg from cursor on (an hobject_t).
// The request must be sent to the pg (see [Client.List]). Parse Out with
// ParsePGNLS.
func PGNLS(max uint64, cursor *HObject, epoch uint32) Op {
	o := Op{Code: OpPGNLS}
	o.put64(0, max)
	o.put32(8, epoch)
	e := encoding.NewEncoder(make([]byte, 0, 64))
	EncodeHObject(e, cursor)
	o.In = e.Bytes()
	return o
}

// ListEntry is one listed object.
type ListEntry struct {
	Namespace string
	Oid       string
	Locator   string
}

// ParsePGNLS decodes pg_nls_response_t: the next cursor, then the entries
// (namespace, name, locator key).
func ParsePGNLS(out []byte) (next HObject, entries []ListEntry, err error) {
	d := encoding.NewDecoder(out)
	sd, _ := d.Struct(1)
	next = DecodeHObject(sd)
	n := sd.Count(12)
	entries = make([]ListEntry, 0, n)
	for i := 0; i < n && sd.Err() == nil; i++ {
		entries = append(entries, ListEntry{Namespace: sd.String(), Oid: sd.String(), Locator: sd.String()})
	}
	if err := d.Err(); err != nil {
		return HObject{}, nil, fmt.Errorf("%w: pgnls output: %v", ErrProtocol, err)
	}
	return next, entries, nil
}
