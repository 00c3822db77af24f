package encoding

import (
	"errors"
	"testing"
	"time"
)

// Vectors from Ceph's own crc32c unit test (src/test/common/test_crc32c.cc).
func TestCRC32CVectors(t *testing.T) {
	for _, tc := range []struct {
		seed uint32
		in   string
		want uint32
	}{
		{0, "foo bar baz", 4119623852},
		{1234, "foo bar baz", 881700046},
		{0, "whiz bang boom", 2360230088},
		{5678, "whiz bang boom", 3743019208},
	} {
		if got := CRC32C(tc.seed, []byte(tc.in)); got != tc.want {
			t.Errorf("CRC32C(%d, %q) = %d, want %d", tc.seed, tc.in, got, tc.want)
		}
	}
	// chaining property
	a, b := []byte("foo bar "), []byte("baz")
	if CRC32C(CRC32C(1234, a), b) != 881700046 {
		t.Error("chained crc differs")
	}
}

func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.U8(7)
	e.U16(0xbeef)
	e.U32(0xdeadbeef)
	e.U64(0x0102030405060708)
	e.I32(-5)
	e.String("hello")
	m := e.StructBegin(3, 1)
	e.U32(42)
	e.String("inner")
	e.U64(99) // a field an older decoder does not know
	e.StructEnd(m)
	e.Strings([]string{"a", "bc"})
	ts := time.Unix(1700000000, 123).UTC()
	e.Timespec(ts)
	e.Bool(true)

	d := NewDecoder(e.Bytes())
	if d.U8() != 7 || d.U16() != 0xbeef || d.U32() != 0xdeadbeef || d.U64() != 0x0102030405060708 || d.I32() != -5 {
		t.Fatal("scalar mismatch")
	}
	if d.String() != "hello" {
		t.Fatal("string mismatch")
	}
	s, h := d.Struct(1)
	if h.Version != 3 || h.Compat != 1 || s.U32() != 42 || s.String() != "inner" {
		t.Fatalf("struct mismatch %+v", h)
	}
	// the unknown u64 is skipped by the envelope
	if got := d.Strings(); len(got) != 2 || got[0] != "a" || got[1] != "bc" {
		t.Fatalf("strings %q", got)
	}
	if got := d.Timespec(); !got.Equal(ts) {
		t.Fatalf("timespec %v", got)
	}
	if !d.Bool() {
		t.Fatal("bool")
	}
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if d.Len() != 0 {
		t.Fatalf("%d bytes left", d.Len())
	}
}

func TestShortAndBadLength(t *testing.T) {
	d := NewDecoder([]byte{1, 2, 3})
	_ = d.U32()
	if !errors.Is(d.Err(), ErrShort) {
		t.Fatalf("want ErrShort, got %v", d.Err())
	}
	// a huge string length must not allocate or panic
	d = NewDecoder([]byte{0xff, 0xff, 0xff, 0x7f, 'x'})
	if s := d.String(); s != "" || !errors.Is(d.Err(), ErrBadLength) {
		t.Fatalf("got %q, %v", s, d.Err())
	}
	d = NewDecoder([]byte{0xff, 0xff, 0xff, 0xff})
	if n := d.Count(8); n != 0 || !errors.Is(d.Err(), ErrBadLength) {
		t.Fatalf("count %d err %v", n, d.Err())
	}
	// compat too new
	d = NewDecoder([]byte{5, 4, 0, 0, 0, 0})
	d.Struct(3)
	var de *DecodeError
	if !errors.Is(d.Err(), ErrIncompatible) || !errors.As(d.Err(), &de) {
		t.Fatalf("want ErrIncompatible, got %v", d.Err())
	}
	// sub-decoder errors stick to the parent
	d = NewDecoder([]byte{2, 0, 0, 0, 1, 2})
	s := d.Sub()
	s.U32()
	if d.Err() == nil {
		t.Fatal("sub error not shared")
	}
}

func FuzzDecoder(f *testing.F) {
	f.Add([]byte{1, 1, 4, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDecoder(b)
		s, _ := d.Struct(255)
		_ = s.Strings()
		_ = s.U64()
		_ = d.Bytes()
		n := d.Count(1)
		for i := 0; i < n; i++ {
			_ = d.U8()
		}
		if d.Err() == nil && d.Offset() > len(b) {
			t.Fatal("read past end")
		}
	})
}
