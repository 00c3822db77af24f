package msgr2

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestReaderDataBuffer: a crc-mode frame's data segment is received into
// the buffer DataBufferFunc lends (checked against its crc), release runs
// once per loan also when the frame is cut short or fails its crc, and a
// nil or wrongly sized buffer falls back to an allocation.
func TestReaderDataBuffer(t *testing.T) {
	hdr := make([]byte, MessageHeaderLen)
	hdr[8] = 7 // tid 7
	front, data := []byte("front"), bytes.Repeat([]byte("0123456789"), 1000)
	w := NewWriter()
	bufs, err := w.Frame(TagMessage, hdr, front, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	wire := bytes.Join(bufs, nil)

	type loan struct {
		n        int
		released int
	}
	read := func(wire []byte, dst []byte) (Frame, *loan, error) {
		l := &loan{}
		r := NewReader(bytes.NewReader(wire), Limits{})
		r.SetDataBuffer(func(p *Preamble, seg0 []byte, n int) ([]byte, func()) {
			var h MessageHeader
			if p.Tag != TagMessage || h.Decode(seg0) != nil || h.Tid != 7 {
				t.Errorf("DataBuffer got tag %v tid %d", p.Tag, h.Tid)
			}
			l.n = n
			return dst, func() { l.released++ }
		})
		var f Frame
		err := r.ReadFrame(&f)
		return f, l, err
	}

	dst := make([]byte, len(data))
	f, l, err := read(wire, dst)
	if err != nil {
		t.Fatal(err)
	}
	if l.n != len(data) || l.released != 1 {
		t.Fatalf("asked for %d bytes, released %d times", l.n, l.released)
	}
	if !bytes.Equal(dst, data) || &f.Segments[3][0] != &dst[0] || !bytes.Equal(f.Segments[1], front) {
		t.Fatal("data segment not received into the lent buffer")
	}

	// A buffer of the wrong size is not used.
	f, l, err = read(wire, make([]byte, len(data)-1))
	if err != nil || l.released != 1 || !bytes.Equal(f.Segments[3], data) {
		t.Fatalf("wrong-size buffer: %v, released %d", err, l.released)
	}

	// Cut inside the data segment: released, error.
	_, l, err = read(wire[:len(wire)-100], make([]byte, len(data)))
	if !errors.Is(err, io.ErrUnexpectedEOF) || l.released != 1 {
		t.Fatalf("truncated frame: %v, released %d", err, l.released)
	}

	// A corrupted data byte fails the crc check.
	bad := bytes.Clone(wire)
	bad[len(bad)-EpilogueCRCLen-1] ^= 1
	_, l, err = read(bad, make([]byte, len(data)))
	if !errors.Is(err, ErrBadCRC) || l.released != 1 {
		t.Fatalf("corrupted data: %v, released %d", err, l.released)
	}
}
