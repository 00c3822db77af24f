package rados

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// The vectors under testdata/osdmap-from-osd/ are MOSDMap fronts (header
// v4) that an OSD of each release sent to our client after the monitors
// had published new epochs, and the monitors' full map of the epoch just
// before (`osd getmap`). Regenerate with
// GORBD_CAPTURE_OSDMAP=$PWD/testdata/osdmap-from-osd go test -run TestIntegrationMapFromOSDs ./rados/
const fromOSDDir = "testdata/osdmap-from-osd"

func loadFromOSD(t *testing.T, rel string) (*osdmap.OSDMap, []byte) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(fromOSDDir, rel+"-full-*.bin"))
	if len(matches) != 1 {
		t.Fatalf("%s: want one full map, found %v", rel, matches)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	base, err := osdmap.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", matches[0], err)
	}
	front, err := os.ReadFile(filepath.Join(fromOSDDir, rel+"-mosdmap-v4.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return base, front
}

// offlineTracker is a tracker on a Conn with an OSD client that never
// dials, holding base.
func offlineTracker(t *testing.T, base *osdmap.OSDMap) *mapTracker {
	t.Helper()
	cl, err := osd.New(osd.Config{Dial: func(context.Context, int32, entity.AddrVec, osd.Handler) (osd.Conn, error) {
		return nil, errors.New("offline")
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{osd: cl}
	tr := newMapTracker(c)
	c.maps = tr
	tr.fsid = func() [16]byte { return base.FSID }
	tr.cur = base
	cl.HandleMap(base)
	t.Cleanup(func() { tr.cancel(); cl.Close() })
	return tr
}

// TestOSDSentMapsAdvanceTracker: the MOSDMaps OSDs sent (Pacific, Reef,
// Tentacle) decode, carry our fsid and the incrementals after the base
// epoch, and move the client's map forward through the OSD hook alone.
func TestOSDSentMapsAdvanceTracker(t *testing.T) {
	for _, rel := range []string{"pacific", "reef", "tentacle"} {
		t.Run(rel, func(t *testing.T) {
			base, front := loadFromOSD(t, rel)
			m, err := mon.DecodeMOSDMap(front, 4)
			if err != nil {
				t.Fatal(err)
			}
			if m.FSID != base.FSID || m.First() != base.Epoch+1 || len(m.Incrementals) == 0 {
				t.Fatalf("batch %d..%d (newest %d, %d incs, %d full) after base %d",
					m.First(), m.Last(), m.Newest, len(m.Incrementals), len(m.Full), base.Epoch)
			}
			t.Logf("base %d, OSD batch %d..%d, OSD newest %d", base.Epoch, m.First(), m.Last(), m.Newest)

			tr := offlineTracker(t, base)
			// Another cluster's maps are ignored before they are queued.
			other := append([]byte(nil), front...)
			other[0] ^= 0xff
			tr.handleOSDMessage(3, &messenger.Message{Type: osd.MsgOSDMap, Version: 4, Front: other})
			if n := len(tr.osdMaps); n != 0 {
				t.Fatalf("a batch with another fsid was queued")
			}
			tr.handleOSDMessage(3, &messenger.Message{Type: osd.MsgOSDMap, Version: 4, Front: front})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.c.osd.WaitForMap(ctx, m.Last()); err != nil {
				t.Fatalf("map never reached epoch %d: %v (tracker at %d)", m.Last(), err, tr.epoch())
			}
			if got, want := tr.fromOSD.Load(), uint64(m.Last()-base.Epoch); got != want {
				t.Errorf("%d epochs counted from OSDs, want %d", got, want)
			}
			if n := tr.decodeErrs.Load(); n != 0 {
				t.Errorf("%d decode errors", n)
			}
			// The same batch again (already applied) is not even queued.
			tr.handleOSDMessage(3, &messenger.Message{Type: osd.MsgOSDMap, Version: 4, Front: front})
			if n := len(tr.osdMaps); n != 0 {
				t.Fatalf("an old batch was queued")
			}
		})
	}
}
