package cephcsi

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/scrypt"
)

// The format facts docs/ceph-csi-compat.md states, checked against every
// captured run: what ceph-csi answered must match what it wrote.

func loadAll(t *testing.T) map[string]*State {
	t.Helper()
	vers, err := Captured("testdata")
	if err != nil {
		t.Fatal(err)
	}
	if len(vers) == 0 {
		t.Fatal("no captured ceph-csi state under testdata/")
	}
	out := map[string]*State{}
	for _, v := range vers {
		st, err := LoadState(filepath.Join("testdata", v, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Oracle.Version != v || len(st.Oracle.Commit) != 40 {
			t.Fatalf("%s: oracle %+v does not name this version and a full commit", v, st.Oracle)
		}
		out[v] = st
	}
	return out
}

type clusterConf struct {
	ClusterID string `json:"clusterID"`
	RBD       struct {
		RadosNamespace string `json:"radosNamespace"`
	} `json:"rbd"`
}

func namespaceOf(t *testing.T, st *State, clusterID string) string {
	t.Helper()
	var cc []clusterConf
	if err := json.Unmarshal(st.ConfigJSON, &cc); err != nil {
		t.Fatal(err)
	}
	for _, c := range cc {
		if c.ClusterID == clusterID {
			return c.RBD.RadosNamespace
		}
	}
	t.Fatalf("clusterID %q not in config.json", clusterID)
	return ""
}

func (l *Layout) object(pool, ns, name string) *Object {
	for i := range l.Objects {
		o := &l.Objects[i]
		if o.Pool == pool && o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

func (o *Object) get(key string) (string, bool) {
	if o == nil {
		return "", false
	}
	for _, e := range o.Omap {
		if e.Key == key {
			return string(e.Value), true
		}
	}
	return "", false
}

func (l *Layout) image(pool, ns, name string) *Image {
	for i := range l.Images {
		im := &l.Images[i]
		if im.Pool == pool && im.Namespace == ns && im.Name == name && im.Trash == nil {
			return im
		}
	}
	return nil
}

func TestHandleRoundTrip(t *testing.T) {
	for v, st := range loadAll(t) {
		for _, c := range st.Calls {
			var id string
			switch {
			case c.Response == nil:
				continue
			case c.Method == "CreateVolume":
				id, _ = st.VolumeID(c.Step)
			case c.Method == "CreateSnapshot":
				id, _ = st.SnapshotID(c.Step)
			default:
				continue
			}
			h, err := ParseHandle(id)
			if err != nil {
				t.Fatalf("%s %s: %v", v, c.Step, err)
			}
			if h.String() != id {
				t.Fatalf("%s %s: %q re-encodes as %q", v, c.Step, id, h.String())
			}
		}
	}
	for _, bad := range []string{"", "0001-0024-x", "0002-0001-a-0000000000000001-0123456789abcdef0123456789abcdef0123",
		"0001-0002-a-0000000000000001-0123456789abcdef0123456789abcdef0123"} {
		if _, err := ParseHandle(bad); err == nil {
			t.Errorf("ParseHandle(%q) accepted", bad)
		}
	}
}

// Every volume ceph-csi created: handle -> pool id and uuid; the directory
// csi.volumes.<instance> maps csi.volume.<request name> to the uuid; the
// per-volume object csi.volume.<uuid> names the request, the image and its
// id; the image exists there, in the clusterID's RADOS namespace.
func TestCapturedVolumeJournal(t *testing.T) {
	for v, st := range loadAll(t) {
		inst := st.Driver.InstanceID
		for _, c := range st.Calls {
			if c.Method != "CreateVolume" || c.Response == nil {
				continue
			}
			var req struct {
				Name       string            `json:"name"`
				Parameters map[string]string `json:"parameters"`
			}
			var resp struct {
				Volume struct {
					VolumeID      string            `json:"volumeId"`
					VolumeContext map[string]string `json:"volumeContext"`
				} `json:"volume"`
			}
			if err := json.Unmarshal(c.Request, &req); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(c.Response, &resp); err != nil {
				t.Fatal(err)
			}
			h, err := ParseHandle(resp.Volume.VolumeID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Deleted(resp.Volume.VolumeID) {
				continue
			}
			pool, ok := st.Layout.PoolName(h.PoolID)
			if !ok {
				t.Fatalf("%s %s: handle pool id %d not a captured pool", v, c.Step, h.PoolID)
			}
			ns := namespaceOf(t, st, h.ClusterID)
			ctx := resp.Volume.VolumeContext
			if ctx["journalPool"] != pool {
				t.Errorf("%s %s: volume context journalPool %q, handle's pool %q", v, c.Step, ctx["journalPool"], pool)
			}
			if ns != "" && ctx["radosNamespace"] != ns {
				t.Errorf("%s %s: volume context radosNamespace %q, want %q", v, c.Step, ctx["radosNamespace"], ns)
			}
			dir := st.Layout.object(pool, ns, "csi.volumes."+inst)
			if dir == nil {
				t.Fatalf("%s %s: no csi.volumes.%s in %s/%s", v, c.Step, inst, pool, ns)
			}
			if got, _ := dir.get("csi.volume." + req.Name); got != h.UUID {
				t.Errorf("%s %s: csi.volumes.%s[csi.volume.%s] = %q, handle uuid %q", v, c.Step, inst, req.Name, got, h.UUID)
			}
			obj := st.Layout.object(pool, ns, "csi.volume."+h.UUID)
			if obj == nil {
				t.Fatalf("%s %s: no csi.volume.%s", v, c.Step, h.UUID)
			}
			name, _ := obj.get("csi.volname")
			image, _ := obj.get("csi.imagename")
			imageID, _ := obj.get("csi.imageid")
			if name != req.Name || image != ctx["imageName"] || !strings.HasSuffix(image, h.UUID) {
				t.Errorf("%s %s: csi.volname %q csi.imagename %q; request %q, imageName %q", v, c.Step, name, image, req.Name, ctx["imageName"])
			}
			im := st.Layout.image(pool, ns, image)
			if im == nil {
				t.Fatalf("%s %s: image %s/%s/%s not there", v, c.Step, pool, ns, image)
			}
			if im.ID != imageID {
				t.Errorf("%s %s: csi.imageid %q, image id %q", v, c.Step, imageID, im.ID)
			}
			if owner, _ := obj.get("csi.volume.owner"); owner != req.Parameters["csi.storage.k8s.io/pvc/namespace"] {
				t.Errorf("%s %s: csi.volume.owner %q, PVC namespace %q", v, c.Step, owner, req.Parameters["csi.storage.k8s.io/pvc/namespace"])
			}
			if req.Parameters["encrypted"] == "true" {
				kms, _ := obj.get("csi.volume.encryptKMS")
				typ, _ := obj.get("csi.volume.encryptionType")
				want := req.Parameters["encryptionKMSID"]
				if want == "" {
					want = "default"
				}
				if kms != want || typ != "block" {
					t.Errorf("%s %s: encryptKMS %q encryptionType %q, want %q block", v, c.Step, kms, typ, want)
				}
				if im.Metadata["rbd.csi.ceph.com/encrypted"] != "encryptionPrepared" {
					t.Errorf("%s %s: image metadata %v lacks rbd.csi.ceph.com/encrypted=encryptionPrepared", v, c.Step, im.Metadata)
				}
			}
		}
	}
}

// Every snapshot: csi.snaps.<instance> maps csi.snap.<name> to the uuid;
// csi.snap.<uuid> names the snapshot request, the image holding it and the
// source image; that image is a clone of the source carrying one user
// snapshot with its own name.
func TestCapturedSnapshotJournal(t *testing.T) {
	for v, st := range loadAll(t) {
		inst := st.Driver.InstanceID
		for _, c := range st.Calls {
			if c.Method != "CreateSnapshot" || c.Response == nil {
				continue
			}
			var req struct {
				Name           string            `json:"name"`
				SourceVolumeID string            `json:"sourceVolumeId"`
				Parameters     map[string]string `json:"parameters"`
			}
			if err := json.Unmarshal(c.Request, &req); err != nil {
				t.Fatal(err)
			}
			id, _ := st.SnapshotID(c.Step)
			if st.Deleted(id) {
				continue
			}
			h, _ := ParseHandle(id)
			src, _ := ParseHandle(req.SourceVolumeID)
			pool, _ := st.Layout.PoolName(h.PoolID)
			if h.PoolID != src.PoolID || h.ClusterID != src.ClusterID {
				t.Errorf("%s %s: snapshot handle %s, source %s: pool or cluster differ", v, c.Step, id, req.SourceVolumeID)
			}
			ns := namespaceOf(t, st, h.ClusterID)
			dir := st.Layout.object(pool, ns, "csi.snaps."+inst)
			if got, _ := dir.get("csi.snap." + req.Name); got != h.UUID {
				t.Errorf("%s %s: csi.snaps[csi.snap.%s] = %q, want %q", v, c.Step, req.Name, got, h.UUID)
			}
			obj := st.Layout.object(pool, ns, "csi.snap."+h.UUID)
			if obj == nil {
				t.Fatalf("%s %s: no csi.snap.%s", v, c.Step, h.UUID)
			}
			name, _ := obj.get("csi.snapname")
			image, _ := obj.get("csi.imagename")
			source, _ := obj.get("csi.source")
			prefix := req.Parameters["snapshotNamePrefix"]
			if prefix == "" {
				prefix = "csi-snap-"
			}
			if name != req.Name || image != prefix+h.UUID {
				t.Errorf("%s %s: csi.snapname %q csi.imagename %q", v, c.Step, name, image)
			}
			srcObj := st.Layout.object(pool, ns, "csi.volume."+src.UUID)
			srcImage := ""
			if srcObj != nil {
				srcImage, _ = srcObj.get("csi.imagename")
			}
			if srcObj != nil && source != srcImage {
				t.Errorf("%s %s: csi.source %q, source volume's image %q", v, c.Step, source, srcImage)
			}
			im := st.Layout.image(pool, ns, image)
			if im == nil {
				t.Fatalf("%s %s: snapshot image %s missing", v, c.Step, image)
			}
			if imageID, _ := obj.get("csi.imageid"); imageID != im.ID {
				t.Errorf("%s %s: csi.imageid %q, image id %q", v, c.Step, imageID, im.ID)
			}
			if im.Info.Parent == nil || im.Info.Parent.Image != source {
				t.Errorf("%s %s: snapshot image parent %+v, want a clone of %s", v, c.Step, im.Info.Parent, source)
			}
			var user []string
			for _, s := range im.Snapshots {
				if s.Namespace == "user" {
					user = append(user, s.Name)
				}
			}
			if len(user) != 1 || user[0] != image {
				t.Errorf("%s %s: user snapshots %v, want [%s]", v, c.Step, user, image)
			}
		}
	}
}

// The "metadata" KMS: rbd.csi.ceph.com/dek is JSON {"dek","nonce"} (base64),
// AES-256-GCM with the key scrypt(passphrase, salt=volume handle, N=32768,
// r=8, p=1, 32 bytes); it opens to a 28-byte LUKS passphrase. A snapshot
// and a restore carry the same passphrase, sealed again for their own
// handle (the snapshot's image under the snapshot handle).
func TestCapturedMetadataKMSDEK(t *testing.T) {
	for v, st := range loadAll(t) {
		pass := ""
		opened := map[string]string{} // step -> plain DEK
		for _, c := range st.Calls {
			if c.Response == nil || (c.Method != "CreateVolume" && c.Method != "CreateSnapshot") {
				continue
			}
			var req struct {
				Secrets    map[string]string `json:"secrets"`
				Parameters map[string]string `json:"parameters"`
			}
			if err := json.Unmarshal(c.Request, &req); err != nil {
				t.Fatal(err)
			}
			var id string
			if c.Method == "CreateVolume" {
				id, _ = st.VolumeID(c.Step)
			} else {
				id, _ = st.SnapshotID(c.Step)
			}
			if st.Deleted(id) {
				continue
			}
			h, _ := ParseHandle(id)
			pool, _ := st.Layout.PoolName(h.PoolID)
			ns := namespaceOf(t, st, h.ClusterID)
			kind := "volume"
			if c.Method == "CreateSnapshot" {
				kind = "snap"
			}
			obj := st.Layout.object(pool, ns, "csi."+kind+"."+h.UUID)
			if kms, _ := obj.get("csi.volume.encryptKMS"); kms != "secrets-metadata" {
				continue
			}
			pass = req.Secrets["encryptionPassphrase"]
			image, _ := obj.get("csi.imagename")
			im := st.Layout.image(pool, ns, image)
			raw, ok := im.Metadata["rbd.csi.ceph.com/dek"]
			if !ok {
				t.Fatalf("%s %s: no rbd.csi.ceph.com/dek on %s", v, c.Step, image)
			}
			var sealed struct {
				DEK   []byte `json:"dek"`
				Nonce []byte `json:"nonce"`
			}
			if err := json.Unmarshal([]byte(raw), &sealed); err != nil {
				t.Fatalf("%s %s: dek %q: %v", v, c.Step, raw, err)
			}
			key, err := scrypt.Key([]byte(pass), []byte(id), 32768, 8, 1, 32)
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := aes.NewCipher(key)
			aead, _ := cipher.NewGCM(blk)
			plain, err := aead.Open(nil, sealed.Nonce, sealed.DEK, nil)
			if err != nil {
				t.Fatalf("%s %s: DEK does not open with salt = handle %s: %v", v, c.Step, id, err)
			}
			if len(plain) != 28 {
				t.Errorf("%s %s: DEK %d bytes, want 28 (base64 of 20 random bytes)", v, c.Step, len(plain))
			}
			opened[c.Step] = string(plain)
		}
		if len(opened) < 3 {
			t.Fatalf("%s: %d metadata-KMS DEKs opened, want the volume, its snapshot and the restore", v, len(opened))
		}
		first := ""
		for _, p := range opened {
			if first == "" {
				first = p
			} else if p != first {
				t.Errorf("%s: snapshot/restore DEKs differ from their source's: %v", v, opened)
				break
			}
		}
	}
}

// The example parameter list was generated from the same ceph-csi commit as
// the capture, and has the keys every example class must have.
func TestExampleParameters(t *testing.T) {
	for v, st := range loadAll(t) {
		ex, err := LoadExampleParameters(filepath.Join("testdata", v, "examples-rbd-parameters.json"))
		if err != nil {
			t.Fatal(err)
		}
		if ex.Version != v || ex.Commit != st.Oracle.Commit {
			t.Fatalf("%s: examples from %s %s, capture from %s %s", v, ex.Version, ex.Commit, st.Oracle.Version, st.Oracle.Commit)
		}
		kinds := map[string]bool{}
		for _, c := range ex.Classes {
			kinds[c.Kind] = true
			keys := map[string]bool{}
			for _, p := range c.Parameters {
				if keys[p.Key] {
					t.Errorf("%s %s: key %q listed twice", v, c.File, p.Key)
				}
				keys[p.Key] = true
			}
			if !keys["clusterID"] {
				t.Errorf("%s %s: no clusterID among %v", v, c.File, keys)
			}
			if c.Kind == "StorageClass" && (!keys["pool"] || !keys["encrypted"]) {
				t.Errorf("%s %s: StorageClass without pool/encrypted: %v", v, c.File, keys)
			}
		}
		if !kinds["StorageClass"] || !kinds["VolumeSnapshotClass"] {
			t.Errorf("%s: classes %v, want a StorageClass and a VolumeSnapshotClass", v, kinds)
		}
	}
}
