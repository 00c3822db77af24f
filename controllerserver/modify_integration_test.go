package controllerserver

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// rbdConfig reads an image's effective QoS options with librbd's own CLI
// (`rbd config image get`): what every librbd client of it applies.
func (f *fixture) rbdConfig(image, option string) string {
	f.t.Helper()
	c := cephtest.Need(f.t, "pacific")
	out, err := exec.CommandContext(f.ctx, "rbd", "-c", c.Conf(), "-k", c.Keyring(), "config", "image", "get",
		f.pool+"/"+image, option).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not set") || strings.Contains(string(out), "No such file") {
			return ""
		}
		f.t.Fatalf("rbd config image get %s %s: %v %s", image, option, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *fixture) modify(id string, params map[string]string) error {
	_, err := f.s.ControllerModifyVolume(f.ctx, &csi.ControllerModifyVolumeRequest{VolumeId: id, MutableParameters: params, Secrets: f.secrets})
	return err
}

func (f *fixture) wantConfig(image string, want map[string]string) {
	f.t.Helper()
	for opt, v := range want {
		if got := f.rbdConfig(image, opt); got != v {
			f.t.Errorf("%s: %s = %q, want %q", image, opt, got, v)
		}
	}
}

// QoS parameters from the StorageClass (ceph-csi's per-GiB form, scaled by
// the volume's size) and the VolumeAttributesClass (CreateVolume's mutable
// parameters, then ControllerModifyVolume) land in the image as librbd's
// config overrides, read back with librbd's CLI; an expansion re-scales;
// a repeat changes nothing; keys that are not mutable are refused naming
// them.
func TestQoSParametersAndModifyVolume(t *testing.T) {
	f := newFixture(t, Options{})
	const gib = 1 << 30
	r, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "qos", VolumeCapabilities: mountCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 3 * gib},
		Parameters: f.params("baseIops", "1000", "iopsPerGiB", "100", "maxIops", "5000", "baseVolSizeBytes", "1073741824",
			"csi.storage.k8s.io/pv/name", "pv-qos"),
		MutableParameters: map[string]string{"rbd_qos_write_bps_limit": "10M"},
		Secrets:           f.secrets})
	if err != nil {
		t.Fatal(err)
	}
	vol := r.GetVolume()
	id, image := vol.GetVolumeId(), vol.GetVolumeContext()["imageName"]
	if got := vol.GetVolumeContext()["csi.storage.k8s.io/pv/name"]; got != "pv-qos" {
		t.Errorf("volume context pv name %q", got)
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "1200", "rbd_qos_write_bps_limit": "10M"})

	if err := f.modify(id, map[string]string{"baseIops": "2000", "baseReadIops": "100", "readIopsPerGiB": "10",
		"csi.storage.k8s.io/pvc/name": "ignored"}); err != nil {
		t.Fatal(err)
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "2200", "rbd_qos_read_iops_limit": "120", "rbd_qos_write_bps_limit": "10M"})
	img := f.openVolume(vol)
	before, err := img.Metadata(f.ctx)
	img.Close(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.modify(id, map[string]string{"baseIops": "2000"}); err != nil {
		t.Fatal(err)
	}
	img = f.openVolume(vol)
	after, err := img.Metadata(f.ctx)
	img.Close(f.ctx)
	if err != nil || len(after) != len(before) {
		t.Fatalf("metadata after a repeat: %v %v", after, err)
	}
	for k, v := range before {
		if string(after[k]) != string(v) {
			t.Errorf("a repeat changed %s: %q → %q", k, v, after[k])
		}
	}

	if _, err := f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 5 * gib}, Secrets: f.secrets}); err != nil {
		t.Fatal(err)
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "2400", "rbd_qos_read_iops_limit": "140"})

	// librbd's own names: a limit given directly replaces the scaling; an
	// empty value removes.
	if err := f.modify(id, map[string]string{"rbd_qos_iops_limit": "300", "rbd_qos_iops_burst": "600", "rbd_qos_write_bps_limit": ""}); err != nil {
		t.Fatal(err)
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "300", "rbd_qos_iops_burst": "600", "rbd_qos_write_bps_limit": ""})
	if _, err := f.s.ControllerExpandVolume(f.ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 6 * gib}, Secrets: f.secrets}); err != nil {
		t.Fatal(err)
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "300", "rbd_qos_read_iops_limit": "150"})

	for params, names := range map[string][]string{
		"pool=other,bogus=1,baseIops=5": {"pool", "bogus"},
		"imageFeatures=layering":        {"imageFeatures"},
		"baseIops=fast":                 {"baseIops"},
		"rbd_qos_bps_limit=1k":          {"rbd_qos_bps_limit"},
	} {
		p := map[string]string{}
		for _, kv := range strings.Split(params, ",") {
			k, v, _ := strings.Cut(kv, "=")
			p[k] = v
		}
		err := f.modify(id, p)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("modify %s: %v, want InvalidArgument", params, err)
			continue
		}
		for _, n := range names {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("modify %s: %v does not name %s", params, err, n)
			}
		}
	}
	f.wantConfig(image, map[string]string{"rbd_qos_iops_limit": "300"})
	missing := csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), UUID: "00000000-0000-0000-0000-000000000000"}.String()
	if err := f.modify(missing, map[string]string{"baseIops": "1"}); status.Code(err) != codes.NotFound {
		t.Errorf("modify of a missing volume: %v, want NotFound", err)
	}
	if _, err := f.s.CreateVolume(f.ctx, &csi.CreateVolumeRequest{Name: "qos-bad", VolumeCapabilities: mountCaps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: gib}, Parameters: f.params(),
		MutableParameters: map[string]string{"XXX_FakeKey": "x"}, Secrets: f.secrets}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "XXX_FakeKey") {
		t.Errorf("CreateVolume with an unknown mutable parameter: %v", err)
	}
	f.deleteVolume(id)
}
