package cephcsi

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// Replay every captured ceph-csi state, read the pools back with the rados
// and rbd CLIs and compare with the capture: journal omaps byte-exact (pool
// ids translated), images with their names, ids, features, layout,
// snapshots, parents, metadata and trash entries.
func TestReplayMatchesCapture(t *testing.T) {
	vers, err := Captured("testdata")
	if err != nil || len(vers) == 0 {
		t.Fatalf("no captured state: %v", err)
	}
	for _, v := range vers {
		t.Run(v, func(t *testing.T) {
			e := NewReplayEnv(t, "pacific", "testdata", v)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			nss := map[string][]string{}
			for _, p := range e.State.Layout.Pools {
				nss[e.Replayed.Pools[p.Name]] = p.Namespaces
			}
			start := time.Now()
			got, err := Dump(ctx, e.CLI, nss)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("read back with the rados/rbd CLIs in %v", time.Since(start).Round(time.Millisecond))
			if len(got.Images) != len(e.State.Layout.Images) || len(got.Objects) != len(e.State.Layout.Objects) {
				t.Errorf("replayed %d images %d objects, captured %d %d",
					len(got.Images), len(got.Objects), len(e.State.Layout.Images), len(e.State.Layout.Objects))
			}
			for _, d := range Compare(&e.State.Layout, got, e.Replayed) {
				t.Error(d)
			}
			// The cluster-mapping.json maps each captured pool id to its replay.
			cm, err := e.Replayed.ClusterMapping(e.State)
			if err != nil {
				t.Fatal(err)
			}
			var mappings []struct {
				ClusterIDMapping map[string]string   `json:"clusterIDMapping"`
				RBDPoolIDMapping []map[string]string `json:"RBDPoolIDMapping"`
			}
			if err := json.Unmarshal(cm, &mappings); err != nil || len(mappings) == 0 {
				t.Fatalf("cluster mapping %s: %v", cm, err)
			}
			for _, p := range e.State.Layout.Pools {
				target, _ := got.PoolID(e.Replayed.Pools[p.Name])
				if to := mappings[0].RBDPoolIDMapping[0][strconv.FormatInt(p.ID, 10)]; to != strconv.FormatInt(target, 10) {
					t.Errorf("cluster mapping sends pool %d to %q, replayed pool id %d", p.ID, to, target)
				}
			}
			// Every live handle points at a journal entry in the target pool.
			for captured, h := range e.Replayed.Handles {
				if e.State.Deleted(captured) {
					continue
				}
				ph, err := ParseHandle(h)
				if err != nil {
					t.Fatal(err)
				}
				pool, ok := got.PoolName(ph.PoolID)
				if !ok {
					t.Fatalf("replayed handle %s: pool id %d not a target pool", h, ph.PoolID)
				}
				found := false
				for _, o := range got.Objects {
					if o.Pool == pool && (o.Name == "csi.volume."+ph.UUID || o.Name == "csi.snap."+ph.UUID) {
						found = true
					}
				}
				if !found {
					t.Errorf("replayed handle %s: no csi.volume./csi.snap.%s in %s", h, ph.UUID, pool)
				}
			}
		})
	}
}

// TestCapturedPV: a replayed volume's PV names the replayed pool and the
// captured volume context.
func TestCapturedPV(t *testing.T) {
	e := NewReplayEnv(t, "pacific", "testdata", "v3.12.2")
	pv, err := e.Replayed.PV(e.State, "vol-node-params")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHandle(pv.VolumeHandle)
	if err != nil {
		t.Fatal(err)
	}
	target := e.Replayed.Pools["ccsi-cc"]
	if pv.Driver != "rbd.csi.ceph.com" || pv.VolumeAttributes["pool"] != target || pv.VolumeAttributes["imageName"] == "" ||
		pv.VolumeAttributes["mounter"] == "" || pv.CapacityBytes <= 0 {
		t.Errorf("%+v", pv)
	}
	if id, _ := e.Replayed.PoolIDs[35]; h.PoolID != id {
		t.Errorf("handle pool %d, want the replayed %d", h.PoolID, id)
	}
}
