package controllerserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/test/cephcsi"
)

// takeover is a controller serving a replayed ceph-csi state: what a real
// ceph-csi v3.12.2 wrote (test/cephcsi/testdata), replayed into fresh pools
// of the pacific cluster, with ceph-csi's config.json (its monitors
// pointed at the cluster) and the cluster-mapping.json that maps the
// captured pool ids to the replayed ones.
type takeover struct {
	t       *testing.T
	ctx     context.Context
	e       *cephcsi.ReplayEnv
	s       *Server
	secrets map[string]string
	fsid    string
}

func newTakeover(t *testing.T) *takeover {
	e := cephcsi.NewReplayEnv(t, "pacific", "../test/cephcsi/testdata", "v3.12.2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	var entries []map[string]any
	if err := json.Unmarshal(e.State.ConfigJSON, &entries); err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		en["monitors"] = []string{e.Cluster.Get("CEPH_MON_V2")}
	}
	b, _ := json.Marshal(entries)
	clusters, err := csiceph.ParseClusters(b)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := e.Replayed.ClusterMapping(e.State)
	if err != nil {
		t.Fatal(err)
	}
	mapping, err := csiceph.ParseClusterMapping(cm)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Clusters: clusters, Mapping: mapping, Instance: e.State.Driver.InstanceID, DriverName: e.State.Driver.Name})
	t.Cleanup(s.Close)
	return &takeover{t: t, ctx: ctx, e: e, s: s, fsid: e.State.Ceph.FSID,
		secrets: map[string]string{"userID": "admin", "userKey": e.Cluster.Get("CEPH_ADMIN_KEY")}}
}

// vol and snap return the replayed handle of a captured step's volume or
// snapshot.
func (k *takeover) vol(step string) string {
	k.t.Helper()
	return k.handle(k.e.State.VolumeID(step))
}

func (k *takeover) snap(step string) string {
	k.t.Helper()
	return k.handle(k.e.State.SnapshotID(step))
}

func (k *takeover) handle(captured string, err error) string {
	k.t.Helper()
	if err != nil {
		k.t.Fatal(err)
	}
	h, err := k.e.Replayed.Handle(captured)
	if err != nil {
		k.t.Fatal(err)
	}
	return h
}

// uuid is the journal uuid of a handle.
func (k *takeover) uuid(handle string) string {
	k.t.Helper()
	h, err := cephcsi.ParseHandle(handle)
	if err != nil {
		k.t.Fatal(err)
	}
	return h.UUID
}

// pool is the replayed pool of a captured one.
func (k *takeover) pool(captured string) string { return k.e.Replayed.Pools[captured] }

func (k *takeover) io(pool, ns string) *rados.IOContext {
	k.t.Helper()
	io, err := k.e.Conn.OpenIOContext(k.ctx, pool)
	if err != nil {
		k.t.Fatal(err)
	}
	io.SetNamespace(ns)
	return io
}

// rbdInfo is `rbd info --format json` of pool[/ns]/image.
func (k *takeover) rbdInfo(spec string) map[string]any {
	k.t.Helper()
	out, err := k.e.CLI.RBD(k.ctx, "info", "--format", "json", spec)
	if err != nil {
		k.t.Fatalf("rbd info %s: %v", spec, err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		k.t.Fatal(err)
	}
	return m
}

func (k *takeover) create(name, cluster, pool string, size int64, src *csi.VolumeContentSource, extra ...string) *csi.Volume {
	k.t.Helper()
	p := map[string]string{"clusterID": cluster, "pool": pool, "imageFeatures": "layering"}
	for i := 0; i+1 < len(extra); i += 2 {
		p[extra[i]] = extra[i+1]
	}
	r, err := k.s.CreateVolume(k.ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: mountCaps, Parameters: p,
		CapacityRange: &csi.CapacityRange{RequiredBytes: size}, Secrets: k.secrets, VolumeContentSource: src})
	if err != nil {
		k.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return r.GetVolume()
}

func snapshotSource(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
}

func (k *takeover) write(io *rados.IOContext, image string, data []byte) {
	k.t.Helper()
	img, err := rbd.Open(k.ctx, io, image, nil)
	if err != nil {
		k.t.Fatalf("open %s: %v", image, err)
	}
	defer img.Close(k.ctx)
	if _, err := img.WriteAt(k.ctx, data, 0); err != nil {
		k.t.Fatal(err)
	}
}

func (k *takeover) read(io *rados.IOContext, image string, n int) []byte {
	k.t.Helper()
	img, err := rbd.Open(k.ctx, io, image, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		k.t.Fatalf("open %s: %v", image, err)
	}
	defer img.Close(k.ctx)
	buf := make([]byte, n)
	if _, err := img.ReadAt(k.ctx, buf, 0); err != nil {
		k.t.Fatal(err)
	}
	return buf
}

// TestTakeoverCephCSI serves the volumes and snapshots a real ceph-csi
// made (replayed) through every controller call: expand, snapshot,
// restore (from its snapshots and ours), clone, list, delete. Volumes it
// makes are in ceph-csi's format. Deleting every volume and snapshot at
// the end leaves the pools without images, trash entries or journal
// entries: nothing ceph-csi made leaks, nothing still used is lost.
func TestTakeoverCephCSI(t *testing.T) {
	k := newTakeover(t)
	main, topo := k.pool("ccsi-cc"), k.pool("ccsi-cc-topo")
	mainIO := k.io(main, "")
	nsIO := k.io(main, "csi-ns")
	const nsCluster = "ccsi-ns-cluster"

	// A handle ceph-csi answered, unchanged, resolves through
	// cluster-mapping.json (its pool id is the captured one).
	captured, _ := k.e.State.VolumeID("vol-plain")
	if _, err := k.s.ValidateVolumeCapabilities(k.ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: captured,
		VolumeCapabilities: mountCaps, Secrets: k.secrets}); err != nil {
		t.Errorf("captured handle through the cluster mapping: %v", err)
	}
	plain := k.vol("vol-plain")
	plainImage := "csi-vol-" + k.uuid(plain)
	if _, err := k.s.ValidateVolumeCapabilities(k.ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: plain,
		VolumeCapabilities: mountCaps, Secrets: k.secrets}); err != nil {
		t.Fatalf("ValidateVolumeCapabilities of ceph-csi's volume: %v", err)
	}

	// Expand a ceph-csi volume (a restore of its snapshot, 16 MiB).
	ex, err := k.s.ControllerExpandVolume(k.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: plain, Secrets: k.secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 40 << 20}})
	if err != nil || ex.GetCapacityBytes() != 40<<20 || !ex.GetNodeExpansionRequired() {
		t.Fatalf("expand: %v %v", ex, err)
	}
	if got := k.rbdInfo(main + "/" + plainImage)["size"]; got != float64(40<<20) {
		t.Errorf("rbd info size %v after expand", got)
	}

	// Native snapshot of a ceph-csi volume, and a restore of it.
	data := []byte("written under csi-gorbd into ceph-csi's volume")
	k.write(mainIO, plainImage, data)
	sn, err := k.s.CreateSnapshot(k.ctx, &csi.CreateSnapshotRequest{Name: "snapshot-takeover-1", SourceVolumeId: plain, Secrets: k.secrets,
		Parameters: map[string]string{"clusterID": k.fsid, "pool": main}})
	if err != nil {
		t.Fatalf("CreateSnapshot of ceph-csi's volume: %v", err)
	}
	if h, err := cephcsi.ParseHandle(sn.GetSnapshot().GetSnapshotId()); err != nil || h.ClusterID != k.fsid {
		t.Errorf("snapshot handle %q is not ceph-csi's format: %v", sn.GetSnapshot().GetSnapshotId(), err)
	}
	again, err := k.s.CreateSnapshot(k.ctx, &csi.CreateSnapshotRequest{Name: "snapshot-takeover-1", SourceVolumeId: plain, Secrets: k.secrets})
	if err != nil || again.GetSnapshot().GetSnapshotId() != sn.GetSnapshot().GetSnapshotId() {
		t.Errorf("repeated CreateSnapshot: %v %v", again, err)
	}
	restored := k.create("pvc-takeover-restore-native", k.fsid, main, 40<<20, snapshotSource(sn.GetSnapshot().GetSnapshotId()))
	if got := k.read(mainIO, restored.GetVolumeContext()["imageName"], len(data)); !bytes.Equal(got, data) {
		t.Errorf("restore of a native snapshot of ceph-csi's volume reads %q", got)
	}
	k.checkEntry(mainIO, restored, "pvc-takeover-restore-native")

	// Clone of a ceph-csi volume.
	clone := k.create("pvc-takeover-clone", k.fsid, main, 40<<20, volumeSource(plain))
	if got := k.read(mainIO, clone.GetVolumeContext()["imageName"], len(data)); !bytes.Equal(got, data) {
		t.Errorf("clone of ceph-csi's volume reads %q", got)
	}

	// Restore from ceph-csi's own snapshots: the clone's parent is its
	// csi-snap image's snapshot.
	var made []string
	for _, tc := range []struct{ step, cluster, ns, parent string }{
		{"snap-plain", k.fsid, "", "csi-snap-0424bef7-8ed2-4dcb-aba1-dc1b4f4b9281"},
		{"snap-prefix", k.fsid, "", "snap-foo-38ff4c64-fb2c-4622-b492-52e1f649d5f4"},
		{"ns-snap", nsCluster, "csi-ns", "csi-snap-1d1ea4da-1c09-4e87-8e8e-fa6c6506d8cd"},
	} {
		v := k.create("pvc-takeover-from-"+tc.step, tc.cluster, main, 16<<20, snapshotSource(k.snap(tc.step)))
		made = append(made, v.GetVolumeId())
		spec := main + "/" + v.GetVolumeContext()["imageName"]
		if tc.ns != "" {
			spec = main + "/" + tc.ns + "/" + v.GetVolumeContext()["imageName"]
			if v.GetVolumeContext()["radosNamespace"] != tc.ns {
				t.Errorf("%s: volume context %v lacks radosNamespace", tc.step, v.GetVolumeContext())
			}
		}
		p, _ := k.rbdInfo(spec)["parent"].(map[string]any)
		if p["image"] != tc.parent || p["snapshot"] != tc.parent || p["pool_namespace"] != tc.ns {
			t.Errorf("restore of %s: parent %v, want %s@%s in namespace %q", tc.step, p, tc.parent, tc.parent, tc.ns)
		}
	}
	// A volume of the namespaced cluster lands in its namespace.
	nsVol := k.create("pvc-takeover-ns", nsCluster, main, 8<<20, nil)
	out, err := k.e.CLI.RBD(k.ctx, "ls", "--pool", main, "--namespace", "csi-ns")
	if err != nil || !strings.Contains(string(out), nsVol.GetVolumeContext()["imageName"]) {
		t.Errorf("rbd ls --namespace csi-ns: %s %v; want %s", out, err, nsVol.GetVolumeContext()["imageName"])
	}
	k.checkEntry(nsIO, nsVol, "pvc-takeover-ns")
	// Snapshot, restore and clone of ceph-csi's namespaced volume.
	nsSrc := k.vol("ns-vol")
	nsSnap, err := k.s.CreateSnapshot(k.ctx, &csi.CreateSnapshotRequest{Name: "snapshot-takeover-ns", SourceVolumeId: nsSrc, Secrets: k.secrets})
	if err != nil {
		t.Fatalf("CreateSnapshot in a namespace: %v", err)
	}
	made = append(made,
		k.create("pvc-takeover-ns-restore", nsCluster, main, 32<<20, snapshotSource(nsSnap.GetSnapshot().GetSnapshotId())).GetVolumeId(),
		k.create("pvc-takeover-ns-clone", nsCluster, main, 32<<20, volumeSource(nsSrc)).GetVolumeId())

	// A topology volume of ceph-csi lives in its topology pool.
	if _, err := k.s.ControllerExpandVolume(k.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: k.vol("vol-topology"), Secrets: k.secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 20 << 20}}); err != nil {
		t.Errorf("expand ceph-csi's topology volume: %v", err)
	}
	if got := k.rbdInfo(topo + "/csi-vol-7b8e8513-69c0-47cb-b18e-0a5003e2bc5c")["size"]; got != float64(20<<20) {
		t.Errorf("topology volume size %v", got)
	}

	// ListSnapshots finds ceph-csi's snapshots and ours.
	ls, err := k.s.ListSnapshots(k.ctx, &csi.ListSnapshotsRequest{SnapshotId: k.snap("snap-plain"), Secrets: k.secrets})
	if err != nil || len(ls.GetEntries()) != 1 || ls.GetEntries()[0].GetSnapshot().GetSizeBytes() != 16<<20 {
		t.Errorf("ListSnapshots of ceph-csi's snapshot: %v %v", ls, err)
	}
	// vol-plain has ceph-csi's snap-plain and our native snapshot.
	ls, err = k.s.ListSnapshots(k.ctx, &csi.ListSnapshotsRequest{SourceVolumeId: plain, Secrets: k.secrets})
	if err != nil || len(ls.GetEntries()) != 2 {
		t.Errorf("ListSnapshots by source: %v %v", ls, err)
	} else {
		got := map[string]bool{}
		for _, e := range ls.GetEntries() {
			got[e.GetSnapshot().GetSnapshotId()] = e.GetSnapshot().GetSourceVolumeId() == plain
		}
		if !got[sn.GetSnapshot().GetSnapshotId()] || !got[k.snap("snap-plain")] {
			t.Errorf("ListSnapshots by source: %v", ls)
		}
	}

	// Delete everything: every volume and snapshot ceph-csi left and every
	// one made here, volumes first (their snapshots and clones must keep
	// working meanwhile), then snapshots.
	var vols, snaps []string
	for captured, h := range k.e.Replayed.Handles {
		if k.e.State.Deleted(captured) {
			continue
		}
		if _, method := k.stepOf(captured); method == "CreateSnapshot" {
			snaps = append(snaps, h)
		} else {
			vols = append(vols, h)
		}
	}
	vols = append(vols, restored.GetVolumeId(), clone.GetVolumeId(), nsVol.GetVolumeId())
	vols = append(vols, made...)
	snaps = append(snaps, sn.GetSnapshot().GetSnapshotId(), nsSnap.GetSnapshot().GetSnapshotId())
	ours, err := k.s.ListSnapshots(k.ctx, &csi.ListSnapshotsRequest{Secrets: k.secrets})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ours.GetEntries()); n < len(snaps) {
		t.Errorf("ListSnapshots over every pool found %d snapshots, want at least %d", n, len(snaps))
	}
	for _, v := range k.liveVolumes(vols) {
		if _, err := k.s.DeleteVolume(k.ctx, &csi.DeleteVolumeRequest{VolumeId: v, Secrets: k.secrets}); err != nil {
			t.Errorf("DeleteVolume %s: %v", v, err)
		}
	}
	if got := k.read(mainIO, "csi-snap-0424bef7-8ed2-4dcb-aba1-dc1b4f4b9281", 4); len(got) != 4 {
		t.Error("ceph-csi's snapshot image is gone with its source volume")
	}
	for _, sid := range snaps {
		if _, err := k.s.DeleteSnapshot(k.ctx, &csi.DeleteSnapshotRequest{SnapshotId: sid, Secrets: k.secrets}); err != nil {
			t.Errorf("DeleteSnapshot %s: %v", sid, err)
		}
	}
	// Deleted already: success, as CSI asks.
	if _, err := k.s.DeleteVolume(k.ctx, &csi.DeleteVolumeRequest{VolumeId: plain, Secrets: k.secrets}); err != nil {
		t.Errorf("DeleteVolume again: %v", err)
	}
	if _, err := k.s.ControllerExpandVolume(k.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: plain, Secrets: k.secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 50 << 20}}); status.Code(err) != codes.NotFound {
		t.Errorf("expand of a deleted volume: %v, want NotFound", err)
	}
	k.requireEmpty()
}

// liveVolumes drops duplicates, keeping the order.
func (k *takeover) liveVolumes(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// stepOf returns the step and method that answered a captured handle.
func (k *takeover) stepOf(captured string) (string, string) {
	for _, step := range k.e.State.Calls {
		if step.Response == nil {
			continue
		}
		switch step.Method {
		case "CreateVolume":
			if id, _ := k.e.State.VolumeID(step.Step); id == captured {
				return step.Step, step.Method
			}
		case "CreateSnapshot":
			if id, _ := k.e.State.SnapshotID(step.Step); id == captured {
				return step.Step, step.Method
			}
		}
	}
	return "", ""
}

// checkEntry checks a volume made here is journalled as ceph-csi does:
// the handle names csi.volume.<uuid>, which holds csi.volname,
// csi.imagename and csi.imageid, and the directory maps the name to it.
func (k *takeover) checkEntry(io *rados.IOContext, v *csi.Volume, name string) {
	k.t.Helper()
	h, err := cephcsi.ParseHandle(v.GetVolumeId())
	if err != nil {
		k.t.Fatalf("volume id %q is not ceph-csi's handle: %v", v.GetVolumeId(), err)
	}
	m, err := io.GetAllOmapValues(k.ctx, "csi.volume."+h.UUID, "")
	if err != nil {
		k.t.Fatalf("csi.volume.%s: %v", h.UUID, err)
	}
	img, err := rbd.Open(k.ctx, io, v.GetVolumeContext()["imageName"], &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		k.t.Fatal(err)
	}
	id := img.Stat().ID
	_ = img.Close(k.ctx)
	if string(m["csi.volname"]) != name || string(m["csi.imagename"]) != v.GetVolumeContext()["imageName"] || string(m["csi.imageid"]) != id {
		k.t.Errorf("csi.volume.%s = %q", h.UUID, m)
	}
	dir, err := io.GetOmapValuesByKeys(k.ctx, "csi.volumes.default", "csi.volume."+name)
	if err != nil || string(dir["csi.volume."+name]) != h.UUID {
		k.t.Errorf("csi.volumes.default: %q %v, want %s", dir, err, h.UUID)
	}
}

// requireEmpty fails unless the replayed pools hold no image, no trash
// entry and no journal entry any more.
func (k *takeover) requireEmpty() {
	k.t.Helper()
	nss := map[string][]string{}
	for _, p := range k.e.State.Layout.Pools {
		nss[k.pool(p.Name)] = p.Namespaces
	}
	got, err := cephcsi.Dump(k.ctx, k.e.CLI, nss)
	if err != nil {
		k.t.Fatal(err)
	}
	for _, im := range got.Images {
		k.t.Errorf("image left: %s/%s/%s (trash %v, snapshots %v)", im.Pool, im.Namespace, im.Name, im.Trash, im.Snapshots)
	}
	for _, o := range got.Objects {
		if len(o.Omap) > 0 || !strings.HasPrefix(o.Name, "csi.volumes.") && !strings.HasPrefix(o.Name, "csi.snaps.") {
			k.t.Errorf("journal object left: %s/%s/%s %s", o.Pool, o.Namespace, o.Name, fmt.Sprint(o.Omap))
		}
	}
}

// TestParametersHonoured: striping and object size reach the image as
// `rbd info` shows them; a clusterID with rbd.radosNamespace puts the
// image and its journal in that namespace (`rbd ls --namespace`); the
// PV/PVC metadata ceph-csi writes is written; unknown keys and encrypted
// are refused naming them.
func TestParametersHonoured(t *testing.T) {
	f := newFixture(t, Options{})
	c := cephtest.Need(t, "pacific")
	if err := cephcsi.HaveCLI(); err != nil {
		cephtest.Missing(t, "%v", err)
	}
	cli := &cephcsi.CLI{Conf: c.Conf(), Keyring: c.Keyring()}
	info := func(spec string) map[string]any {
		t.Helper()
		out, err := cli.RBD(f.ctx, "info", "--format", "json", spec)
		if err != nil {
			t.Fatalf("rbd info %s: %v", spec, err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	v := f.createVolume("pvc-striped", 32<<20, nil, "stripeUnit", "65536", "stripeCount", "4", "objectSize", "8388608",
		"imageFeatures", "layering,exclusive-lock", "csi.storage.k8s.io/pvc/name", "data", "csi.storage.k8s.io/pvc/namespace", "team",
		"csi.storage.k8s.io/pv/name", "pvc-striped", "mounter", "rbd-nbd", "mapOptions", "krbd:lock_on_read")
	m := info(f.pool + "/" + v.GetVolumeContext()["imageName"])
	if m["stripe_unit"] != float64(65536) || m["stripe_count"] != float64(4) || m["object_size"] != float64(8<<20) || m["order"] != float64(23) {
		t.Errorf("rbd info: stripe_unit %v stripe_count %v object_size %v order %v; want 65536, 4, 8 MiB, 23",
			m["stripe_unit"], m["stripe_count"], m["object_size"], m["order"])
	}
	if fs := fmt.Sprint(m["features"]); !strings.Contains(fs, "exclusive-lock") || !strings.Contains(fs, "striping") {
		t.Errorf("features %s", fs)
	}
	img := f.openVolume(v)
	md, err := img.Metadata(f.ctx)
	_ = img.Close(f.ctx)
	if err != nil || string(md["csi.storage.k8s.io/pvc/name"]) != "data" || string(md["csi.storage.k8s.io/pvc/namespace"]) != "team" ||
		string(md["csi.storage.k8s.io/pv/name"]) != "pvc-striped" {
		t.Errorf("image metadata %q %v", md, err)
	}
	if vc := v.GetVolumeContext(); vc["mounter"] != "rbd-nbd" || vc["stripeUnit"] != "65536" || vc["journalPool"] != f.pool {
		t.Errorf("volume context %v: want the parameters, as ceph-csi returns them", vc)
	}
	f.deleteVolume(v.GetVolumeId())

	for key, p := range map[string][]string{
		`"bogusKey"`:       {"bogusKey", "1"},
		"encryptionType":   {"encrypted", "true", "encryptionType", "file"},
		"mkfsOptions":      {"mkfsOptions", "-d /etc"},
		"radosNamespace":   {"radosNamespace", "elsewhere"},
		"dataPool":         {"dataPool", "no-such-pool-" + f.instance},
		"stripeCount":      {"stripeUnit", "65536"},
		"thickProvision":   {"thickProvision", "true"},
		"imageFeatures":    {"imageFeatures", "layering,journaling"},
		"topologyConstrai": {"topologyConstrainedPools", "[{"},
	} {
		_, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "pvc-refused", VolumeCapabilities: mountCaps,
			Parameters: f.params(p...), Secrets: f.secrets})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), key) {
			t.Errorf("%v: %v, want InvalidArgument naming %s", p, err, key)
		}
	}

	// The namespace: made as `rbd namespace create` does, removed after.
	ns := "ns-" + f.instance
	if _, err := cli.RBD(f.ctx, "namespace", "create", "--pool", f.pool, "--namespace", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.RBD(context.Background(), "namespace", "remove", "--pool", f.pool, "--namespace", ns)
	})
	nsCluster := f.cluster + "-ns"
	s := New(Options{Instance: f.instance, Clusters: csiceph.Clusters{nsCluster: {ClusterID: nsCluster, Monitors: []string{f.mon},
		RBD: csiceph.RBDConfig{RadosNamespace: ns}}}})
	defer s.Close()
	r, err := s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "pvc-in-ns", VolumeCapabilities: mountCaps,
		Parameters: map[string]string{"clusterID": nsCluster, "pool": f.pool, "radosNamespace": ns}, Secrets: f.secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	image := r.GetVolume().GetVolumeContext()["imageName"]
	out, err := cli.RBD(f.ctx, "ls", "--pool", f.pool, "--namespace", ns)
	if err != nil || strings.TrimSpace(string(out)) != image {
		t.Errorf("rbd ls --namespace %s: %q %v, want %s", ns, out, err, image)
	}
	if out, err := cli.RADOS(f.ctx, "--pool", f.pool, "--namespace", ns, "listomapvals", "csi.volumes."+f.instance); err != nil ||
		!strings.Contains(string(out), "csi.volume.pvc-in-ns") {
		t.Errorf("journal in the namespace: %s %v", out, err)
	}
	if r.GetVolume().GetVolumeContext()["radosNamespace"] != ns {
		t.Errorf("volume context %v lacks radosNamespace", r.GetVolume().GetVolumeContext())
	}
	if _, err := s.DeleteVolume(f.ctx, &csi.DeleteVolumeRequest{VolumeId: r.GetVolume().GetVolumeId(), Secrets: f.secrets}); err != nil {
		t.Fatal(err)
	}
	if out, err := cli.RBD(f.ctx, "ls", "--pool", f.pool, "--namespace", ns); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("after delete: %q %v", out, err)
	}
	_, _ = cli.RADOS(f.ctx, "--pool", f.pool, "--namespace", ns, "rm", "csi.volumes."+f.instance)
	f.requireClean()
}
