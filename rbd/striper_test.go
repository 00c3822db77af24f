package rbd

import (
	"math/rand/v2"
	"testing"
)

// naiveLocate maps one image byte to (object, offset) straight from the
// definition of striping: stripe units go round-robin over StripeCount
// objects; when those objects are full, the next object set starts.
func naiveLocate(l Layout, off uint64) (objno, objoff uint64) {
	l = l.normalized()
	su, sc, os := l.StripeUnit, l.StripeCount, l.ObjectSize()
	unit := off / su
	set := off / (os * sc)
	inSet := unit - set*(os/su)*sc
	row := inSet / sc // which stripe unit inside each object
	col := inSet % sc // which object of the set
	return set*sc + col, row*su + off%su
}

func TestStriperMatchesNaiveModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 3000; iter++ {
		order := uint8(12 + r.IntN(4))
		os := uint64(1) << order
		var l Layout
		l.Order = order
		if r.IntN(3) > 0 {
			units := []uint64{os, os / 2, os / 4, os / 16, 4096}
			l.StripeUnit = units[r.IntN(len(units))]
			l.StripeCount = uint64(1 + r.IntN(6))
		}
		if err := l.Validate(); err != nil {
			t.Fatal(err)
		}
		off := r.Uint64N(8 * os * 6)
		length := 1 + r.Uint64N(3*os*2)
		exts := l.Map(off, length)
		covered := uint64(0)
		seen := map[uint64]bool{}
		for _, e := range exts {
			if seen[e.ObjectNo] {
				t.Fatalf("%+v: object %d listed twice", l, e.ObjectNo)
			}
			seen[e.ObjectNo] = true
			if e.Offset+e.Length > os {
				t.Fatalf("%+v: extent %+v past the object end", l, e)
			}
			var bl uint64
			pos := e.Offset
			for _, b := range e.Buffer {
				for i := uint64(0); i < b.Len; i += 511 {
					o, oo := naiveLocate(l, off+b.Off+i)
					if o != e.ObjectNo || oo != pos+i {
						t.Fatalf("%+v off %d len %d: buffer byte %d → obj %d@%d, model says %d@%d",
							l, off, length, b.Off+i, e.ObjectNo, pos+i, o, oo)
					}
				}
				o, oo := naiveLocate(l, off+b.Off+b.Len-1)
				if o != e.ObjectNo || oo != pos+b.Len-1 {
					t.Fatalf("%+v: last byte of %+v → %d@%d, model %d@%d", l, b, e.ObjectNo, pos+b.Len-1, o, oo)
				}
				pos += b.Len
				bl += b.Len
			}
			if bl != e.Length {
				t.Fatalf("%+v: buffer pieces sum to %d, extent length %d", l, bl, e.Length)
			}
			covered += e.Length
		}
		if covered != length {
			t.Fatalf("%+v: extents cover %d of %d bytes", l, covered, length)
		}
	}
}

func TestObjectCountMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 500; iter++ {
		l := Layout{Order: 12 + uint8(r.IntN(3))}
		os := l.ObjectSize()
		if r.IntN(2) == 0 {
			l.StripeUnit = os >> r.IntN(3)
			l.StripeCount = uint64(1 + r.IntN(5))
		}
		size := r.Uint64N(20 * os)
		want := uint64(0)
		if size > 0 {
			// The highest object number any byte maps to, +1, bounded by
			// the set structure: count distinct objects touched.
			touched := map[uint64]bool{}
			for _, e := range l.Map(0, size) {
				touched[e.ObjectNo] = true
			}
			want = uint64(len(touched))
		}
		if got := l.ObjectCount(size); got != want {
			t.Fatalf("%+v size %d: ObjectCount %d, objects touched %d", l, size, got, want)
		}
	}
}

func TestStriperSimple(t *testing.T) {
	l := Layout{Order: 22}
	ex := l.Map(4<<20-10, 20)
	if len(ex) != 2 || ex[0].ObjectNo != 0 || ex[0].Offset != 4<<20-10 || ex[0].Length != 10 ||
		ex[1].ObjectNo != 1 || ex[1].Offset != 0 || ex[1].Length != 10 || ex[1].Buffer[0].Off != 10 {
		t.Fatalf("%+v", ex)
	}
	// 64K x 4 over 1M objects (the captured "s" image): byte 256K is the
	// second stripe unit of object 0.
	s := Layout{Order: 20, StripeUnit: 64 << 10, StripeCount: 4}
	ex = s.Map(256<<10, 64<<10)
	if len(ex) != 1 || ex[0].ObjectNo != 0 || ex[0].Offset != 64<<10 {
		t.Fatalf("%+v", ex)
	}
	if bad := (Layout{Order: 22, StripeUnit: 3 << 20}); bad.Validate() == nil {
		t.Fatal("stripe unit not dividing the object accepted")
	}
}

// TestLayoutSingle: the I/O path's one-object shortcut agrees with Map
// wherever it applies, and applies wherever Map gives one contiguous piece.
func TestLayoutSingle(t *testing.T) {
	layouts := []Layout{
		{Order: 22},
		{Order: 22, StripeUnit: 1 << 16, StripeCount: 1},
		{Order: 22, StripeUnit: 1 << 16, StripeCount: 4},
		{Order: 12, StripeUnit: 4096, StripeCount: 3},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range layouts {
		for i := 0; i < 5000; i++ {
			off := rng.Uint64N(64 << 20)
			n := rng.Uint64N(1<<17) + 1
			if i%3 == 0 {
				n = 4096
			}
			ext := l.Map(off, n)
			objno, objOff, ok := l.single(off, n)
			one := len(ext) == 1 && len(ext[0].Buffer) == 1
			if ok != one {
				t.Fatalf("%+v [%d,+%d): single %v, Map %+v", l, off, n, ok, ext)
			}
			if ok && (ext[0].ObjectNo != objno || ext[0].Offset != objOff || ext[0].Length != n) {
				t.Fatalf("%+v [%d,+%d): single (%d, %d), Map %+v", l, off, n, objno, objOff, ext)
			}
		}
	}
}
