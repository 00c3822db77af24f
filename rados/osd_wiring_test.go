package rados

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// The vectors under testdata/osdmap-pacific/ are the MOSDMap contents a
// pacific monitor sent: full-EPOCH.bin and inc-EPOCH.bin (regenerate with
// GORBD_CAPTURE=1 go test -run TestCaptureOSDMaps ./rados/), plus the
// full map before the first incremental from `ceph osd getmap EPOCH -o`.
const vecDir = "testdata/osdmap-pacific"

// TestCaptureOSDMaps subscribes from a few epochs back (incrementals) and
// to the latest full map, and stores the blobs.
func TestCaptureOSDMaps(t *testing.T) {
	if os.Getenv("GORBD_CAPTURE") != "1" {
		t.Skip("set GORBD_CAPTURE=1 to capture")
	}
	cl := cephtest.Need(t, "pacific")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()}.resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string][]byte{}
	arrived := make(chan struct{}, 16)
	mc, err := mon.Dial(ctx, mon.Config{Mons: r.mons, Auth: r.auth, OnOSDMap: func(m *mon.OSDMapMsg) {
		mu.Lock()
		for _, b := range m.Incrementals {
			got[fmt.Sprintf("inc-%d.bin", b.Epoch)] = b.Data
		}
		for _, b := range m.Full {
			got[fmt.Sprintf("full-%d.bin", b.Epoch)] = b.Data
		}
		mu.Unlock()
		arrived <- struct{}{}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	newest, _, err := mc.GetVersion(ctx, "osdmap")
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.SubscribeOSDMap(ctx, 0); err != nil { // the latest full map
		t.Fatal(err)
	}
	<-arrived
	if err := mc.SubscribeOSDMap(ctx, uint32(newest)-8); err != nil { // incrementals
		t.Fatal(err)
	}
	<-arrived
	if err := os.MkdirAll(vecDir, 0o755); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, b := range got {
		if err := os.WriteFile(filepath.Join(vecDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d blobs up to epoch %d", len(got), newest)
}

// vectors loads the captured blobs by kind and epoch.
func vectors(t *testing.T) (full, inc map[uint32][]byte) {
	t.Helper()
	ents, err := os.ReadDir(vecDir)
	if err != nil {
		t.Fatal(err)
	}
	full, inc = map[uint32][]byte{}, map[uint32][]byte{}
	for _, e := range ents {
		kind, rest, _ := strings.Cut(strings.TrimSuffix(e.Name(), ".bin"), "-")
		n, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(vecDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if kind == "full" {
			full[uint32(n)] = b
		} else {
			inc[uint32(n)] = b
		}
	}
	if len(full) == 0 || len(inc) < 3 {
		t.Fatalf("vectors: %d full, %d incremental", len(full), len(inc))
	}
	return full, inc
}

func sortedEpochs(m map[uint32][]byte) []uint32 {
	var es []uint32
	for e := range m {
		es = append(es, e)
	}
	slices.Sort(es)
	return es
}

func blobs(m map[uint32][]byte, from, to uint32) []mon.EpochBlob {
	var out []mon.EpochBlob
	for _, e := range sortedEpochs(m) {
		if e >= from && e <= to {
			out = append(out, mon.EpochBlob{Epoch: e, Data: m[e]})
		}
	}
	return out
}

// samePlacement compares every pg's mapping of two maps.
func samePlacement(t *testing.T, a, b *osdmap.OSDMap) {
	t.Helper()
	if a.Epoch != b.Epoch || len(a.Pools) != len(b.Pools) || a.MaxOSD != b.MaxOSD || a.Flags != b.Flags {
		t.Fatalf("maps differ: epoch %d/%d pools %d/%d", a.Epoch, b.Epoch, len(a.Pools), len(b.Pools))
	}
	ids := make([]int64, 0, len(a.Pools))
	for id := range a.Pools {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var ma, mb osdmap.Mapping
	for _, id := range ids {
		pb := b.Pools[id]
		if pb == nil || a.PoolNames[id] != b.PoolNames[id] || a.Pools[id].PGNum != pb.PGNum {
			t.Fatalf("pool %d differs", id)
		}
		for s := uint32(0); s < pb.PGNum; s++ {
			pg := osdmap.PG{Pool: id, Seed: s}
			if err := a.MapPG(pg, &ma); err != nil {
				t.Fatal(err)
			}
			if err := b.MapPG(pg, &mb); err != nil {
				t.Fatal(err)
			}
			la, lb := string(ma.AppendDumpLine(nil)), string(mb.AppendDumpLine(nil))
			if la != lb {
				t.Fatalf("pg %v: %s vs %s", pg, la, lb)
			}
		}
	}
}

// TestMapTrackerIncrementals: a full map then the incrementals after it,
// in one batch or several, reach the same map as the newest full map.
func TestMapTrackerIncrementals(t *testing.T) {
	full, inc := vectors(t)
	latest := sortedEpochs(full)[len(full)-1]
	want, err := osdmap.Decode(full[latest])
	if err != nil {
		t.Fatal(err)
	}
	first := sortedEpochs(inc)[0]
	// The base is the full map just before the first incremental.
	base, ok := full[first-1]
	if !ok {
		t.Fatalf("no full map at epoch %d in the vectors", first-1)
	}
	t.Run("one batch", func(t *testing.T) {
		tr := &mapTracker{}
		m := &mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: first - 1, Data: base}}, Incrementals: blobs(inc, first, latest)}
		got, wantReq := tr.advanceLocked(m)
		if got == nil || wantReq != -1 {
			t.Fatalf("advance: %v %d", got, wantReq)
		}
		samePlacement(t, got, want)
	})
	t.Run("batches", func(t *testing.T) {
		tr := &mapTracker{}
		tr.advanceLocked(&mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: first - 1, Data: base}}})
		for e := first; e <= latest; e += 2 {
			tr.advanceLocked(&mon.OSDMapMsg{Incrementals: blobs(inc, e, e+1)})
		}
		samePlacement(t, tr.cur, want)
	})
	t.Run("gap", func(t *testing.T) {
		tr := &mapTracker{}
		tr.advanceLocked(&mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: first - 1, Data: base}}})
		got, req := tr.advanceLocked(&mon.OSDMapMsg{Incrementals: blobs(inc, first+1, latest)})
		if got != nil || req != int64(first) || tr.cur.Epoch != first-1 {
			t.Fatalf("gap: map %v, request from %d, epoch %d", got, req, tr.cur.Epoch)
		}
		// The missing epochs arrive: the map catches up.
		got, req = tr.advanceLocked(&mon.OSDMapMsg{Incrementals: blobs(inc, first, latest)})
		if got == nil || req != -1 {
			t.Fatalf("catch up: %v %d", got, req)
		}
		samePlacement(t, got, want)
	})
	t.Run("no base", func(t *testing.T) {
		tr := &mapTracker{}
		got, req := tr.advanceLocked(&mon.OSDMapMsg{Incrementals: blobs(inc, first, latest)})
		if got != nil || req != 0 {
			t.Fatalf("incrementals without a map: %v, request %d", got, req)
		}
	})
	t.Run("old and duplicate", func(t *testing.T) {
		tr := &mapTracker{}
		tr.advanceLocked(&mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: latest, Data: full[latest]}}})
		got, req := tr.advanceLocked(&mon.OSDMapMsg{Incrementals: blobs(inc, first, latest),
			Full: []mon.EpochBlob{{Epoch: first - 1, Data: base}}})
		if got != nil || req != -1 || tr.cur.Epoch != latest {
			t.Fatalf("old maps changed ours: %v %d epoch %d", got, req, tr.cur.Epoch)
		}
	})
	t.Run("corrupt full map", func(t *testing.T) {
		tr := &mapTracker{}
		bad := append([]byte(nil), full[latest]...)
		bad[len(bad)/2] ^= 0xff
		m := &mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: latest, Data: bad}}}
		if got, req := tr.advanceLocked(m); got != nil || req != 0 {
			t.Fatalf("first corrupt full map: %v, request %d", got, req)
		}
		// The same map again: no new request (it would loop).
		if got, req := tr.advanceLocked(m); got != nil || req != -1 {
			t.Fatalf("second corrupt full map: %v, request %d", got, req)
		}
	})
	t.Run("corrupt incremental", func(t *testing.T) {
		tr := &mapTracker{}
		tr.advanceLocked(&mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: first - 1, Data: base}}})
		bad := blobs(inc, first, latest)
		bad[1].Data = append([]byte(nil), bad[1].Data...)
		bad[1].Data[len(bad[1].Data)/2] ^= 0xff
		got, req := tr.advanceLocked(&mon.OSDMapMsg{Incrementals: bad})
		if got == nil || got.Epoch != first || req != int64(first)+1 {
			t.Fatalf("corrupt incremental: %v %d", got, req)
		}
	})
}

// FuzzMapTracker feeds arbitrary incrementals and full maps after a real
// base map: the tracker must never panic and never go backwards.
func FuzzMapTracker(f *testing.F) {
	base, err := os.ReadFile(filepath.Join(vecDir, "full-47.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range []uint32{48, 49} {
		b, err := os.ReadFile(filepath.Join(vecDir, fmt.Sprintf("inc-%d.bin", e)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Add([]byte{8, 7, 0, 0, 0, 0}, true)
	om, err := osdmap.Decode(base)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, asFull bool) {
		tr := &mapTracker{cur: om} // maps are immutable: Apply copies
		m := &mon.OSDMapMsg{Incrementals: []mon.EpochBlob{{Epoch: 48, Data: b}}}
		if asFull {
			m = &mon.OSDMapMsg{Full: []mon.EpochBlob{{Epoch: 48, Data: b}}}
		}
		tr.advanceLocked(m)
		if tr.cur == nil || tr.cur.Epoch < 47 {
			t.Fatalf("tracker lost its map: %v", tr.cur)
		}
	})
}
