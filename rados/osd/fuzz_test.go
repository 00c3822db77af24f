package osd

import (
	"path/filepath"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// fuzzOutputs runs every op-output decoder on b; none may panic.
func fuzzOutputs(b []byte) {
	ParseStat(b)
	ParseSparseRead(b)
	ParseXattrs(b)
	ParseOmapKeys(b)
	ParseOmapVals(b)
	ParseOmapValsByKeys(b)
	ParseListWatchers(b)
	ParseNotifyReplies(b)
	ParsePGNLS(b)
}

func addCaptured(f *testing.F, glob string, add func(front, data []byte)) {
	files, _ := filepath.Glob(glob)
	for _, p := range files {
		front, data := readFrame(f, p)
		add(front, data)
	}
}

func FuzzOSDOpReply(f *testing.F) {
	addCaptured(f, "testdata/*-in-43-*.front", func(front, data []byte) { f.Add(front, data, uint16(8)) })
	fr, d := encodeOSDOpReply(&osdOpReply{Oid: "x", Ops: []replyOp{{Code: OpRead, Out: []byte("abc")}},
		Redirect: &Redirect{Locator: Locator{Pool: 1, Hash: -1}}})
	f.Add(fr, d, uint16(7))
	f.Fuzz(func(t *testing.T, front, data []byte, v uint16) {
		r, err := decodeOSDOpReply(front, data, v)
		if err != nil {
			return
		}
		var total int
		for _, o := range r.Ops {
			total += len(o.Out)
		}
		if total != len(data) {
			t.Fatalf("outputs cover %d of %d bytes", total, len(data))
		}
	})
}

func FuzzOSDOp(f *testing.F) {
	addCaptured(f, "testdata/*-out-42-*.front", func(front, data []byte) { f.Add(front, data) })
	f.Fuzz(func(t *testing.T, front, data []byte) {
		m, err := decodeOSDOp(front, data)
		if err != nil {
			return
		}
		m.encode(nil)
	})
}

func FuzzOSDBackoff(f *testing.F) {
	b := &osdBackoff{SPG: SPG{PG: osdmap.PG{Pool: 1, Seed: 2}, Shard: -1}, Op: BackoffBlock, ID: 1,
		Begin: HObject{Pool: 1, Oid: "a"}, End: HObject{Max: true}}
	f.Add(b.encode(nil))
	f.Fuzz(func(t *testing.T, front []byte) {
		b, err := decodeOSDBackoff(front)
		if err != nil {
			return
		}
		again, err := decodeOSDBackoff(b.encode(nil))
		if err != nil || again.Begin != b.Begin || again.End != b.End {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzWatchNotify(f *testing.F) {
	addCaptured(f, "testdata/*-in-44-*.front", func(front, data []byte) { f.Add(front, data, uint16(3)) })
	f.Fuzz(func(t *testing.T, front, data []byte, v uint16) {
		if w, err := decodeWatchNotify(front, data, v); err == nil {
			ParseNotifyReplies(w.Data)
		}
	})
}

func FuzzOutputs(f *testing.F) {
	addCaptured(f, "testdata/*-in-43-*.front", func(front, data []byte) {
		if r, err := decodeOSDOpReply(front, data, 8); err == nil {
			for _, o := range r.Ops {
				f.Add(o.Out)
			}
		}
	})
	e := encoding.NewEncoder(nil)
	e.U32(1)
	e.U64(0)
	e.U64(2)
	e.Bytes32([]byte("hi"))
	f.Add(e.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOutputs(b) })
}
