package msgr2

import (
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Keepalive2 is the KEEPALIVE2 payload (and, with the stamp echoed, the
// KEEPALIVE2_ACK payload): a ceph_timespec.
type Keepalive2 struct {
	Stamp time.Time
}

// Keepalive2Len is the payload length.
const Keepalive2Len = 8

// Encode appends the payload to dst.
func (k *Keepalive2) Encode(dst []byte) []byte {
	e := encoding.NewEncoder(dst)
	e.Timespec(k.Stamp)
	return e.Bytes()
}

// Decode decodes the payload.
func (k *Keepalive2) Decode(b []byte) error {
	d := encoding.NewDecoder(b)
	k.Stamp = d.Timespec()
	return payloadErr(TagKeepalive2, d.Err())
}

// Keepalive2Ack is the KEEPALIVE2_ACK payload: the stamp of the
// KEEPALIVE2 it answers.
type Keepalive2Ack = Keepalive2
