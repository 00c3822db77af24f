package msgr2

import (
	"bytes"
	"errors"
	"testing"
)

// TestEmitDeferredCRC checks that frames whose large segments' crcs are
// deferred to Emit come out byte for byte like frames assembled at once,
// also when one payload slice appears in several frames of a batch, and
// that a Reader accepts them.
func TestEmitDeferredCRC(t *testing.T) {
	mk := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	shared := mk(DeferCRCMin+crcChunk+1, 3)
	type frame struct{ segs [][]byte }
	batches := [][]frame{
		{{[][]byte{mk(MessageHeaderLen, 1), mk(200, 2), nil, mk(4<<20, 5)}}},
		{{[][]byte{mk(MessageHeaderLen, 1), mk(10, 2), nil, mk(DeferCRCMin, 5)}}},
		{{[][]byte{mk(MessageHeaderLen, 1), mk(10, 2), nil, mk(DeferCRCMin-1, 5)}}},
		{{[][]byte{mk(MessageHeaderLen, 1), mk(10, 2), nil, mk(2*crcChunk, 5)}}},
		{ // a shared payload, a large front and middle, small frames between
			{[][]byte{mk(MessageHeaderLen, 1), mk(10, 2), nil, shared}},
			{[][]byte{mk(8, 9)}},
			{[][]byte{mk(MessageHeaderLen, 1), mk(DeferCRCMin+5, 2), mk(crcChunk*3, 4), shared}},
			{[][]byte{mk(MessageHeaderLen, 1), mk(10, 2), nil, shared}},
		},
	}
	for bi, batch := range batches {
		var want bytes.Buffer
		plain := NewWriter()
		for _, f := range batch {
			bufs, err := plain.Frame(TagMessage, f.segs...)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range bufs {
				want.Write(b)
			}
		}

		w := NewWriter()
		w.SetDeferCRC(true)
		var out [][]byte
		for _, f := range batch {
			var err error
			if out, err = w.Append(out, TagMessage, f.segs...); err != nil {
				t.Fatal(err)
			}
		}
		var got bytes.Buffer
		calls := 0
		err := w.Emit(out, func(bufs [][]byte) error {
			calls++
			for _, b := range bufs {
				got.Write(b)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("batch %d: %v", bi, err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("batch %d: deferred crc frames differ from plain ones (%d vs %d bytes)", bi, got.Len(), want.Len())
		}
		r := NewReader(bytes.NewReader(got.Bytes()), Limits{})
		for i := range batch {
			var f Frame
			if err := r.ReadFrame(&f); err != nil {
				t.Fatalf("batch %d frame %d: %v", bi, i, err)
			}
		}
		t.Logf("batch %d: %d bytes in %d writes", bi, got.Len(), calls)
	}
}

// TestEmitError checks that a write error stops Emit and is returned.
func TestEmitError(t *testing.T) {
	w := NewWriter()
	w.SetDeferCRC(true)
	bufs, err := w.Frame(TagMessage, make([]byte, MessageHeaderLen), nil, nil, make([]byte, 4*crcChunk))
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	n := 0
	err = w.Emit(bufs, func([][]byte) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Emit = %v after %d writes, want boom after 1", err, n)
	}
}
