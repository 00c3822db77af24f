package controllerserver

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/crypt/luks"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/internal/kms"
	"github.com/csi-gorbd/csi-gorbd/rbd"
	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

// encFixture is a controller with a KMS configuration: "meta", ceph-csi's
// metadata type (wrapped per-volume passphrases), besides the default.
func encFixture(t *testing.T) *fixture {
	cfg := filepath.Join(t.TempDir(), "kms.json")
	if err := os.WriteFile(cfg, []byte(`{"meta": {"encryptionKMSType": "metadata"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{KMS: kms.Loader{File: cfg}, KDF: luks.KDF{Type: luks.KDFPBKDF2, Hash: "sha256", Iterations: 10000}})
	f.secrets[kms.SecretPassphraseKey] = "sc-passphrase"
	return f
}

// plain opens a volume's plaintext with the passphrase its KMS yields
// (kmsID "" for the default KMS).
func (f *fixture) plain(v *csi.Volume, kmsID string) (*encryption.Image, []byte) {
	f.t.Helper()
	img := f.openVolume(v)
	st, err := kms.Open(f.ctx, f.s.kms, nil, kms.Request{KMSID: kmsID, Secrets: f.secrets})
	if err != nil {
		f.t.Fatal(err)
	}
	pass, err := st.Passphrase(f.ctx, encryption.Volume{ID: v.GetVolumeId(), Meta: img})
	if err != nil {
		f.t.Fatal(err)
	}
	e, err := encryption.Open(f.ctx, img, pass, nil)
	if err != nil {
		f.t.Fatalf("open %s: %v", v.GetVolumeId(), err)
	}
	f.opened = append(f.opened, e)
	return e, pass
}

func (f *fixture) entry(v *csi.Volume) journal.Entry {
	f.t.Helper()
	j := journal.Journal{IO: f.io, Instance: f.instance, Kind: journal.Volumes}
	id := v.GetVolumeId()
	e, err := j.Entry(f.ctx, id[len(id)-36:])
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// TestEncryptedVolumes: CreateVolume of an encrypted StorageClass (the
// metadata KMS; the dm-crypt layout) writes the passphrase (sealed in
// rbd.csi.ceph.com/dek), the LUKS2 header and the encrypted state before
// it answers, the image is the capacity plus the 16 MiB header, the
// journal carries ceph-csi's encryptKMS/encryptionType; a snapshot
// reports the plaintext size; a restore and a clone read the source's
// data with passphrases of their own (the source's no longer opens them);
// expansion grows the plaintext; mixing plain and encrypted volumes,
// other layouts and missing passphrases are refused or honoured as
// documented; everything is deleted.
func TestEncryptedVolumes(t *testing.T) {
	f := encFixture(t)
	enc := []string{"encrypted", "true", "encryptionKMSID", "meta"}
	v := f.createVolume("pvc-enc", 32<<20, nil, enc...)
	if v.GetCapacityBytes() != 32<<20 || v.GetVolumeContext()["encrypted"] != "true" || v.GetVolumeContext()["encryptionKMSID"] != "meta" {
		t.Errorf("volume %+v", v)
	}
	img := f.openVolume(v)
	md, _ := img.Metadata(f.ctx)
	if img.Size() != 48<<20 || string(md[csicrypt.MetaState]) != csicrypt.StateEncrypted || len(md[kms.MetaDEK]) == 0 {
		t.Errorf("image of %d bytes, metadata %q", img.Size(), md)
	}
	_ = img.Close(f.ctx)
	if e := f.entry(v); e.Attrs[journal.KeyEncryptKMS] != "meta" || e.Attrs[journal.KeyEncryptionType] != "block" {
		t.Errorf("journal %v", e.Attrs)
	}
	e, srcPass := f.plain(v, "meta")
	if e.DataOffset() != 16<<20 || e.Size() != 32<<20 || e.SectorSize() != 4096 {
		t.Errorf("header: data offset %d, plaintext %d, sector %d", e.DataOffset(), e.Size(), e.SectorSize())
	}
	data := bytes.Repeat([]byte("encrypted volume data "), 2000)
	if _, err := e.WriteAt(f.ctx, data, 1<<20); err != nil {
		t.Fatal(err)
	}
	// A repeated CreateVolume answers the same; another KMS is a conflict.
	if again := f.createVolume("pvc-enc", 32<<20, nil, enc...); again.GetVolumeId() != v.GetVolumeId() {
		t.Errorf("repeat: %s", again.GetVolumeId())
	}
	if _, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "pvc-enc", VolumeCapabilities: mountCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 32 << 20}, Parameters: f.params("encrypted", "true"), Secrets: f.secrets}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("repeat with the default KMS: %v", err)
	}

	sn := f.createSnapshot("snap-enc", v.GetVolumeId())
	if sn.GetSizeBytes() != 32<<20 {
		t.Errorf("snapshot size %d, want the plaintext", sn.GetSizeBytes())
	}
	src := func(sn *csi.Snapshot) *csi.VolumeContentSource {
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: sn.GetSnapshotId()}}}
	}
	vsrc := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: v.GetVolumeId()}}}
	restore := f.createVolume("pvc-enc-restore", sn.GetSizeBytes(), src(sn), enc...)
	clone := f.createVolume("pvc-enc-clone", 64<<20, vsrc, enc...)
	for _, c := range []*csi.Volume{restore, clone} {
		ce, pass := f.plain(c, "meta")
		got := make([]byte, len(data))
		if _, err := ce.ReadAt(f.ctx, got, 1<<20); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s does not read the source's data: %v", c.GetVolumeId(), err)
		}
		if bytes.Equal(pass, srcPass) {
			t.Errorf("%s has its source's passphrase", c.GetVolumeId())
		}
		if _, err := encryption.Open(f.ctx, ce.Device(), srcPass, nil); !errors_Is(err, luks.ErrWrongPassphrase) {
			t.Errorf("the source's passphrase opens %s: %v", c.GetVolumeId(), err)
		}
		if uint64(c.GetCapacityBytes()) != ce.Size() {
			t.Errorf("%s: capacity %d, plaintext %d", c.GetVolumeId(), c.GetCapacityBytes(), ce.Size())
		}
	}
	// The source still opens with its own passphrase.
	if _, err := encryption.Open(f.ctx, e.Device(), srcPass, nil); err != nil {
		t.Errorf("source after the clones: %v", err)
	}

	ex, err := f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: v.GetVolumeId(),
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, Secrets: f.secrets})
	if err != nil || ex.GetCapacityBytes() != 64<<20 || !ex.GetNodeExpansionRequired() {
		t.Errorf("expand: %v %v", ex, err)
	}
	img = f.openVolume(v)
	if img.Size() != 80<<20 {
		t.Errorf("expanded image %d bytes, want 64 MiB + 16 MiB", img.Size())
	}
	_ = img.Close(f.ctx)

	// Refusals: a plain volume from an encrypted source, an encrypted one
	// from a plain source, no passphrase in the provisioner secret.
	refuse := func(what string, req *csi.CreateVolumeRequest, code codes.Code, names ...string) {
		t.Helper()
		_, err := f.s.CreateVolume(f.ctx, req)
		if status.Code(err) != code {
			t.Errorf("%s: %v, want %v", what, err, code)
		}
		for _, n := range names {
			if err != nil && !strings.Contains(err.Error(), n) {
				t.Errorf("%s: %v does not name %q", what, err, n)
			}
		}
		if err != nil && strings.Contains(err.Error(), "sc-passphrase") {
			t.Errorf("%s: the message shows the passphrase", what)
		}
	}
	refuse("plain from encrypted", &csi.CreateVolumeRequest{Name: "pvc-r1", VolumeCapabilities: mountCaps, Parameters: f.params(),
		Secrets: f.secrets, VolumeContentSource: src(sn)}, codes.InvalidArgument, "encrypted")
	pv := f.createVolume("pvc-plain", 8<<20, nil)
	refuse("encrypted from plain", &csi.CreateVolumeRequest{Name: "pvc-r2", VolumeCapabilities: mountCaps, Parameters: f.params(enc...),
		Secrets: f.secrets, VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: pv.GetVolumeId()}}}}, codes.InvalidArgument, "not encrypted")
	noPass := map[string]string{"userID": f.secrets["userID"], "userKey": f.secrets["userKey"]}
	refuse("no passphrase", &csi.CreateVolumeRequest{Name: "pvc-r3", VolumeCapabilities: mountCaps, Parameters: f.params(enc...),
		Secrets: noPass}, codes.InvalidArgument, "provisioner secret", "encryptionPassphrase")
	refuse("unknown KMS", &csi.CreateVolumeRequest{Name: "pvc-r4", VolumeCapabilities: mountCaps,
		Parameters: f.params("encrypted", "true", "encryptionKMSID", "vault-1"), Secrets: f.secrets}, codes.InvalidArgument, "vault-1")

	// The librbd layout, default KMS: the secret is the passphrase.
	lv := f.createVolume("pvc-enc-librbd", 8<<20, nil, "encrypted", "true", "encryptionLayout", "librbd")
	le, pass := f.plain(lv, "")
	if string(pass) != "sc-passphrase" || le.Header().Version() != 2 || le.Size() != 8<<20 {
		t.Errorf("librbd layout: version %d, plaintext %d", le.Header().Version(), le.Size())
	}

	for _, o := range f.opened {
		_ = o.Close(context.Background())
	}
	for _, c := range []*csi.Volume{restore, clone, lv, pv} {
		f.deleteVolume(c.GetVolumeId())
	}
	f.deleteSnapshot(sn.GetSnapshotId())
	f.deleteVolume(v.GetVolumeId())
	_ = rbd.ErrNotFound
	f.requireClean()
}

func errors_Is(err, target error) bool {
	return err != nil && strings.Contains(err.Error(), target.Error())
}

// TestEncryptedTakeover: ceph-csi's encrypted volumes and snapshots (the
// v3.12.2 capture replayed, addressed by their original handles through
// cluster-mapping.json, which the metadata KMS's salt needs): a restore
// from its metadata-KMS snapshot and a clone of its default-KMS volume
// are prepared volumes (never formatted, as ceph-csi left them) with
// passphrases of their own sealed for their own ids; expanding its
// volume adds the header area; the journal of ours carries the KMS.
func TestEncryptedTakeover(t *testing.T) {
	k := newTakeover(t)
	cfg := filepath.Join(t.TempDir(), "kms.json")
	if err := os.WriteFile(cfg, k.e.State.KMSConfigJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	k.s.Close()
	cm, _ := k.e.Replayed.ClusterMapping(k.e.State)
	mapping, _ := csiceph.ParseClusterMapping(cm)
	k.s = New(Options{Clusters: k.s.conns.Clusters(), Mapping: mapping, Instance: k.e.State.Driver.InstanceID,
		DriverName: k.e.State.Driver.Name, KMS: kms.Loader{File: cfg}})
	t.Cleanup(k.s.Close)
	k.secrets[kms.SecretPassphraseKey] = "ccsi-capture-passphrase"
	st, err := kms.Open(k.ctx, kms.Loader{File: cfg}, nil, kms.Request{KMSID: "secrets-metadata", Secrets: k.secrets})
	if err != nil {
		t.Fatal(err)
	}
	volID, _ := k.e.State.VolumeID("vol-encrypted-metadata-kms")
	snapID, _ := k.e.State.SnapshotID("snap-encrypted-metadata-kms")
	plainID, _ := k.e.State.VolumeID("vol-encrypted")
	cluster, pool := k.e.State.Ceph.FSID, k.pool("ccsi-cc")
	var opened []*rbd.Image
	img := func(v *csi.Volume) *rbd.Image {
		t.Helper()
		i, err := rbd.Open(k.ctx, k.io(pool, ""), v.GetVolumeContext()["imageName"], &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, i)
		return i
	}
	srcPass := func(id string, image string) []byte {
		i, err := rbd.Open(k.ctx, k.io(pool, ""), image, &rbd.OpenOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer i.Close(k.ctx)
		p, err := st.Passphrase(k.ctx, encryption.Volume{ID: id, Meta: i})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		return p
	}
	restore := k.create("pvc-enc-restore", cluster, pool, 32<<20, snapshotSource(snapID), "encrypted", "true", "encryptionKMSID", "secrets-metadata")
	ri := img(restore)
	p, err := st.Passphrase(k.ctx, encryption.Volume{ID: restore.GetVolumeId(), Meta: ri})
	if err != nil {
		t.Fatalf("the restore's passphrase: %v", err)
	}
	snapImage := "csi-snap-" + k.uuid(k.snap("snap-encrypted-metadata-kms"))
	if bytes.Equal(p, srcPass(snapID, snapImage)) {
		t.Error("the restore kept ceph-csi's snapshot passphrase")
	}
	if s, _ := csicrypt.State(k.ctx, ri); s != csicrypt.StatePrepared || ri.Size() != 48<<20 {
		t.Errorf("restore: state %q, %d bytes; want prepared, 32 MiB + 16 MiB", s, ri.Size())
	}
	clone := k.create("pvc-enc-clone", cluster, pool, 16<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: plainID}}}, "encrypted", "true")
	if s, _ := csicrypt.State(k.ctx, img(clone)); s != csicrypt.StatePrepared {
		t.Errorf("clone of the default-KMS volume: state %q", s)
	}
	ex, err := k.s.ControllerExpandVolume(k.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: volID,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, Secrets: k.secrets})
	if err != nil || ex.GetCapacityBytes() != 64<<20 {
		t.Fatalf("expand ceph-csi's encrypted volume: %v %v", ex, err)
	}
	vi, err := rbd.Open(k.ctx, k.io(pool, ""), "csi-vol-"+k.uuid(k.vol("vol-encrypted-metadata-kms")), &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if vi.Size() != 80<<20 {
		t.Errorf("expanded image %d bytes, want 64 MiB + 16 MiB", vi.Size())
	}
	_ = vi.Close(k.ctx)
	for _, i := range opened {
		_ = i.Close(k.ctx)
	}
	for _, v := range []*csi.Volume{restore, clone} {
		if _, err := k.s.DeleteVolume(k.ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId(), Secrets: k.secrets}); err != nil {
			t.Errorf("delete %s: %v", v.GetVolumeId(), err)
		}
	}
}
