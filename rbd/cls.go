package rbd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Object class names.
const (
	clsRBD  = "rbd"
	clsLock = "lock"
)

// enc starts an argument buffer.
func enc() *encoding.Encoder { return encoding.NewEncoder(nil) }

// finish turns a reply decoder's sticky error into an ErrMalformed error
// naming the method.
func finish(method string, d *encoding.Decoder) error {
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %s reply: %v", ErrMalformed, method, err)
	}
	return nil
}

// SnapContext is the snapshot context writes carry: the newest snapshot
// id seen (Seq) and the existing snapshot ids, newest first.
type SnapContext struct {
	Seq   uint64
	Snaps []uint64
}

// valid mirrors SnapContext::is_valid: seq ≥ every id, ids strictly
// descending.
func (s SnapContext) valid() bool {
	for i, id := range s.Snaps {
		if id > s.Seq || (i > 0 && id >= s.Snaps[i-1]) {
			return false
		}
	}
	return true
}

// decodeStringMap reads map<string, bufferlist>.
func decodeStringMap(d *encoding.Decoder) map[string][]byte {
	n := d.Count(8)
	m := make(map[string][]byte, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = d.BytesCopy()
	}
	return m
}

// optionalU64 reads std::optional<uint64_t> (u8 present, then the value).
func optionalU64(d *encoding.Decoder) (uint64, bool) {
	if !d.Bool() {
		return 0, false
	}
	return d.U64(), true
}
