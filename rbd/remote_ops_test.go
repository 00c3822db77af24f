package rbd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// TestDecodeCapturedOperations reads the operation requests captured on
// each release (testdata/<release>/notify: those librbd's CLI sent for
// `rbd resize --size 24M`, `rbd snap create @cli`, `rbd snap rm @cli`, and
// ours): every one decodes, librbd's carry a request id (also its
// SNAP_REMOVE, on every release), and ours encode byte for byte as
// captured.
func TestDecodeCapturedOperations(t *testing.T) {
	librbd := map[uint32]int{}
	for _, rel := range releases {
		files, _ := filepath.Glob(filepath.Join("testdata", rel, "notify", "op*"))
		if len(files) == 0 {
			t.Fatalf("no captured requests for %s", rel)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			v, op, body, ok := decodeNotify(b)
			if !ok || v != 7 {
				t.Fatalf("%s: NotifyMessage v%d ok=%v", p, v, ok)
			}
			r, err := decodeOperation(v, op, body)
			if err != nil || !r.async || r.ns.Type != SnapNamespaceUser {
				t.Fatalf("%s: %+v %v", p, r, err)
			}
			switch {
			case r.size == 24<<20 || r.name == "cli": // librbd's
				librbd[op]++
			case r.op == notifyResize: // ours: resize to 16M, shrink allowed
				if r.size != 16<<20 || !r.shrink {
					t.Errorf("%s: %+v", p, r)
				}
				again := remoteMessage(op, func(e *encoding.Encoder) {
					e.U64(r.size)
					r.id.encode(e)
					e.Bool(true)
				})
				if string(again) != string(b) {
					t.Errorf("%s: our RESIZE encodes as %x, captured %x", p, again, b)
				}
			default:
				if !strings.HasPrefix(r.name, "s1") {
					t.Errorf("%s: %+v", p, r)
				}
			}
		}
	}
	for _, op := range []uint32{notifyResize, notifySnapCreate, notifySnapRemove} {
		if librbd[op] != len(releases) {
			t.Errorf("librbd's op %d captured %d times, want one per release", op, librbd[op])
		}
	}
	// Before Reef's librbd added it, SNAP_REMOVE had no request id: it
	// still decodes (answered in the ack).
	old := remoteMessage(notifySnapRemove, func(e *encoding.Encoder) {
		e.String("x")
		encodeSnapshotNamespace(e, SnapshotNamespace{})
	})
	v, op, body, _ := decodeNotify(old)
	if r, err := decodeOperation(v, op, body); err != nil || r.async || r.name != "x" {
		t.Errorf("SNAP_REMOVE without a request id: %+v %v", r, err)
	}
}

func FuzzDecodeOperation(f *testing.F) {
	addCaptured(f, filepath.Join("notify", "op*"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, op, body, ok := decodeNotify(b)
		if !ok {
			return
		}
		_, _ = decodeOperation(v, op, body)
	})
}
