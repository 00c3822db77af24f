package osdmap

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"testing"
)

// incSeries are monitor-store dumps (ceph-kvstore-tool ROCKSDB get osdmap N
// / get osdmap full_N) from throw-away clusters: every incremental from
// first+1 to last with the full map of every epoch.
//
//   - reef 45..52 (Reef 18.2.7): pg-temp 3.9, rm-pg-upmap-items 3.5,
//     primary-affinity osd.0 1, out osd.4, pool create+rm, crush reweight
//     osd.3, osd down 0.
//   - tentacle 25..39 (Tentacle 20.2.4): fake OSDs added to CRUSH, a
//     replicated and an EC pool created, pg-temp, primary-temp, primary
//     affinity, pg-upmap, pg-upmap-items, out, compat and per-pool weight
//     sets.
//   - pacific 25..35 (Pacific 16.2.15, incremental client data v8): the
//     same kinds of changes, then an EC pool removed.
var incSeries = []struct {
	name        string
	first, last int
}{
	{"reef", 45, 52},
	{"tentacle", 25, 39},
	{"pacific", 25, 35},
}

func TestApplyIncrementals(t *testing.T) {
	for _, s := range incSeries {
		t.Run(s.name, func(t *testing.T) {
			prev := loadOSDMap(t, fmt.Sprintf("testdata/inc/%s-full-%d.osdmap", s.name, s.first))
			for e := s.first + 1; e <= s.last; e++ {
				b, err := os.ReadFile(fmt.Sprintf("testdata/inc/%s-inc-%d.osdinc", s.name, e))
				if err != nil {
					t.Fatal(err)
				}
				inc, err := DecodeIncremental(b)
				if err != nil {
					t.Fatalf("inc %d: %v", e, err)
				}
				if inc.Epoch != uint32(e) || !inc.HasCRC {
					t.Fatalf("inc %d: epoch %d crc %v", e, inc.Epoch, inc.HasCRC)
				}
				next, err := prev.Apply(inc)
				if err != nil {
					t.Fatalf("apply %d: %v", e, err)
				}
				want := loadOSDMap(t, fmt.Sprintf("testdata/inc/%s-full-%d.osdmap", s.name, e))
				compareMaps(t, e, next, want)
				for _, args := range []string{"", "--mark-up-in"} {
					a, w := next.clone(), want.clone()
					pa, pw := applyToolArgs(t, a, args), applyToolArgs(t, w, args)
					compareLines(t, fmt.Sprintf("epoch %d %s", e, args), dumpAll(t, a, pa), dumpAll(t, w, pw))
				}
				prev = next
			}
		})
	}
}

func compareMaps(t *testing.T, e int, got, want *OSDMap) {
	t.Helper()
	check := func(what string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			t.Errorf("epoch %d %s: got %v want %v", e, what, g, w)
		}
	}
	check("epoch", got.Epoch, want.Epoch)
	check("flags", got.Flags, want.Flags)
	check("max_osd", got.MaxOSD, want.MaxOSD)
	check("state", got.OSDState, want.OSDState)
	check("weight", got.OSDWeight, want.OSDWeight)
	check("pool ids", slices.Sorted(maps.Keys(got.Pools)), slices.Sorted(maps.Keys(want.Pools)))
	check("pool names", got.PoolNames, want.PoolNames)
	check("pg_temp", got.PGTemp, want.PGTemp)
	check("primary_temp", got.PrimaryTemp, want.PrimaryTemp)
	check("pg_upmap", got.PGUpmap, want.PGUpmap)
	check("pg_upmap_items", got.PGUpmapItems, want.PGUpmapItems)
	check("pg_upmap_primaries", len(got.PGUpmapPrimaries), len(want.PGUpmapPrimaries))
	ga, wa := got.PrimaryAffinity, want.PrimaryAffinity
	if ga == nil {
		ga = slices.Repeat([]uint32{DefaultPrimaryAffinity}, int(got.MaxOSD))
	}
	if wa == nil {
		wa = slices.Repeat([]uint32{DefaultPrimaryAffinity}, int(want.MaxOSD))
	}
	check("primary_affinity", ga, wa)
	for i := range got.OSDAddrs {
		if !got.IsUp(int32(i)) {
			continue
		}
		check(fmt.Sprintf("osd.%d addrs", i), got.OSDAddrs[i].String(), want.OSDAddrs[i].String())
	}
	for id, p := range want.Pools {
		if g := got.Pools[id]; g != nil {
			check(fmt.Sprintf("pool %d", id), *g, *p)
		}
	}
}

func TestApplyRejectsWrongEpoch(t *testing.T) {
	m := loadOSDMap(t, "testdata/inc/reef-full-45.osdmap")
	b, err := os.ReadFile("testdata/inc/reef-inc-47.osdinc")
	if err != nil {
		t.Fatal(err)
	}
	inc, err := DecodeIncremental(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(inc); err == nil {
		t.Fatal("applied epoch 47 on top of 45")
	}
	c := append([]byte(nil), b...)
	c[30] ^= 1
	if _, err := DecodeIncremental(c); err == nil {
		t.Fatal("corrupted incremental decoded")
	} else if !errors.Is(err, ErrBadCRC) {
		t.Logf("corruption caught as %v", err)
	}
}

// TestUpmapPrimary checks _apply_upmap's pg_upmap_primaries step on a real
// map: the new primary is swapped to the front only when it is in the raw
// set at a later position and not out. (No test cluster could set one: the
// monitors require the OSD to be in the pg's acting set, and ours run a
// single OSD.)
func TestUpmapPrimary(t *testing.T) {
	m := loadOSDMap(t, "testdata/live-reef-rich.osdmap")
	applyToolArgs(t, m, "--mark-up-in")
	pg := PG{Pool: 3, Seed: 0}
	var before Mapping
	if err := m.MapPG(pg, &before); err != nil {
		t.Fatal(err)
	}
	if len(before.Up) < 3 {
		t.Fatalf("pg 3.0 up %v", before.Up)
	}
	target := before.Raw[2]
	m.PGUpmapPrimaries = map[PG]int32{pg: target}
	var after Mapping
	if err := m.MapPG(pg, &after); err != nil {
		t.Fatal(err)
	}
	want := []int32{target, before.Raw[1], before.Raw[0]}
	if !slices.Equal(after.Up, want) || after.UpPrimary != target {
		t.Fatalf("up %v p%d, want %v p%d", after.Up, after.UpPrimary, want, target)
	}
	// An out target is ignored.
	m.SetWeight(target, WeightOut)
	if err := m.MapPG(pg, &after); err != nil {
		t.Fatal(err)
	}
	if after.Up[0] == target {
		t.Fatalf("out osd.%d became primary: %v", target, after.Up)
	}
}

func TestPrimaryShard(t *testing.T) {
	m := loadOSDMap(t, "testdata/live-reef-rich.osdmap")
	var mp Mapping
	// 4.1: up [NONE,0,NONE] with only osd.0 up; the primary holds shard 1.
	if err := m.MapPG(PG{Pool: 4, Seed: 1}, &mp); err != nil {
		t.Fatal(err)
	}
	if mp.PrimaryShard() != 1 {
		t.Fatalf("4.1 acting %v p%d: shard %d", mp.Acting, mp.ActingPrimary, mp.PrimaryShard())
	}
	if err := m.MapPG(PG{Pool: 3, Seed: 1}, &mp); err != nil {
		t.Fatal(err)
	}
	if mp.PrimaryShard() != -1 {
		t.Fatal("replicated pool has a shard")
	}
}
