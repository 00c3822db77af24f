package entity

import (
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

func TestAddrRoundTrip(t *testing.T) {
	for _, s := range []string{"v2:127.0.0.1:3300/0", "v1:10.1.2.3:6789/77", "v2:[::1]:3300/5"} {
		a, err := ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != s {
			t.Errorf("String() = %q, want %q", a.String(), s)
		}
		var e encoding.Encoder
		AddrVec{a, a}.Encode(&e)
		d := encoding.NewDecoder(e.Bytes())
		v := DecodeAddrVec(d)
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
		if len(v) != 2 || !v[0].Equal(a) || !v[1].Equal(a) || d.Len() != 0 {
			t.Fatalf("round trip of %s gave %v", s, v)
		}
	}
}

func TestAddrWireBytes(t *testing.T) {
	a, _ := ParseAddr("v2:127.0.0.1:3300/0")
	var e encoding.Encoder
	a.Encode(&e)
	want := []byte{1, 1, 1, 28, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0,
		2, 0, 0x0c, 0xe4, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	if string(e.Bytes()) != string(want) {
		t.Fatalf("got % x\nwant % x", e.Bytes(), want)
	}
}

func FuzzDecodeAddrVec(f *testing.F) {
	a, _ := ParseAddr("v2:127.0.0.1:3300/0")
	var e encoding.Encoder
	AddrVec{a}.Encode(&e)
	f.Add(e.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		d := encoding.NewDecoder(b)
		v := DecodeAddrVec(d)
		if d.Err() != nil {
			return
		}
		var e encoding.Encoder
		v.Encode(&e)
		d2 := encoding.NewDecoder(e.Bytes())
		v2 := DecodeAddrVec(d2)
		if d2.Err() != nil || len(v2) != len(v) {
			t.Fatalf("re-decode failed: %v", d2.Err())
		}
	})
}
