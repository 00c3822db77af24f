package encoding

import (
	"errors"
	"testing"
)

func TestVarint(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want uint64
	}{
		{[]byte{0}, 0},
		{[]byte{0x7f}, 127},
		{[]byte{0x80, 0x01}, 128},
		{[]byte{0xac, 0x02}, 300},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ^uint64(0)},
	} {
		d := NewDecoder(c.in)
		if got := d.Varint(); got != c.want || d.Err() != nil || d.Len() != 0 {
			t.Errorf("% x: %d (%v, %d left), want %d", c.in, got, d.Err(), d.Len(), c.want)
		}
	}
	for _, bad := range [][]byte{
		{0x80},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		d := NewDecoder(bad)
		d.Varint()
		if d.Err() == nil {
			t.Errorf("% x: no error", bad)
		}
	}
	d := NewDecoder([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	d.Varint()
	if !errors.Is(d.Err(), errVarint) {
		t.Errorf("overflow: %v", d.Err())
	}
}
