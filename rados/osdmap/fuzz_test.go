package osdmap

import (
	"os"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

func seedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// poolSeeds cuts the encoded pg_pool_t structs out of a full map.
func poolSeeds(f *testing.F, path string) [][]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	d := encoding.NewDecoder(b)
	w, _ := d.Struct(7)
	c, _ := w.Struct(10)
	c.Skip(16 + 4 + 8 + 8)
	n := c.Count(14)
	var out [][]byte
	for i := 0; i < n && c.Err() == nil; i++ {
		c.I64()
		start := c.Offset()
		DecodePool(c)
		out = append(out, b[start:c.Offset()])
	}
	if err := d.Err(); err != nil {
		f.Fatal(err)
	}
	return out
}

// exercise maps a few pgs and an object of at most four pools: enough to
// reach every placement step without letting one fuzzed map with thousands
// of pools take seconds.
func exercise(m *OSDMap) {
	var mp Mapping
	pools := 0
	for id, p := range m.Pools {
		if pools++; pools > 4 {
			break
		}
		for ps := uint32(0); ps < p.PGNum && ps < 8; ps++ {
			_ = m.MapPG(PG{Pool: id, Seed: ps}, &mp)
		}
		_ = m.MapObject(id, "obj", "", "ns", &mp)
	}
}

func FuzzDecode(f *testing.F) {
	seedFiles(f, "testdata/simple6.osdmap", "testdata/live-reef-rich.osdmap", "testdata/live-tentacle-rich.osdmap", "testdata/odd.osdmap")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeFull(b, false)
		if err != nil {
			return
		}
		exercise(m)
	})
}

func FuzzDecodeIncremental(f *testing.F) {
	seedFiles(f, "testdata/inc/reef-inc-46.osdinc", "testdata/inc/reef-inc-49.osdinc", "testdata/inc/reef-inc-50.osdinc", "testdata/inc/reef-inc-52.osdinc")
	base, err := os.ReadFile("testdata/inc/reef-full-45.osdmap")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inc, err := decodeIncremental(b, false)
		if err != nil {
			return
		}
		m, err := Decode(base)
		if err != nil {
			t.Fatal(err)
		}
		inc.Epoch = m.Epoch + 1
		inc.FSID = m.FSID
		if n, err := m.Apply(inc); err == nil {
			exercise(n)
		}
	})
}

func FuzzDecodePool(f *testing.F) {
	for _, s := range poolSeeds(f, "testdata/live-reef-rich.osdmap") {
		f.Add(s)
	}
	for _, s := range poolSeeds(f, "testdata/live-tentacle-rich.osdmap") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := encoding.NewDecoder(b)
		p := DecodePool(d)
		if d.Err() != nil || p == nil {
			return
		}
		p.HashKey("x", "y")
		p.RawPGToPPS(p.RawPGToPG(PG{Pool: 1, Seed: 12345}))
	})
}
