package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// vacYAML is a VolumeAttributesClass of the driver.
func vacYAML(name string, params map[string]string) string {
	y := fmt.Sprintf("apiVersion: storage.k8s.io/v1\nkind: VolumeAttributesClass\nmetadata: {name: %s}\ndriverName: rbd.csi-gorbd.io\nparameters:\n", name)
	for k, v := range params {
		y += fmt.Sprintf("  %s: %q\n", k, v)
	}
	return y
}

// rbdConfig reads one of an image's effective librbd options with the rbd
// CLI ("" when not set): what every librbd client of the image applies.
func (f *flows) rbdConfig(ctx context.Context, image, option string) (string, error) {
	out, err := f.ceph.cli(ctx, "rbd", "config", "image", "get", f.pool+"/"+image, option)
	if err != nil {
		if strings.Contains(string(out)+err.Error(), "not set") {
			return "", nil
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// waitConfig waits until the image's options have the wanted values.
func (f *flows) waitConfig(t *testing.T, ctx context.Context, image string, want map[string]string) {
	t.Helper()
	waitFor(ctx, t, 2*time.Minute, "QoS options of image "+image, func() (bool, error) {
		for opt, v := range want {
			got, err := f.rbdConfig(ctx, image, opt)
			if err != nil {
				return false, err
			}
			if got != v {
				return false, fmt.Errorf("%s = %q, want %q", opt, got, v)
			}
		}
		return true, nil
	})
}

// modify: VolumeAttributesClasses through the real external-resizer
// (ControllerModifyVolume) and external-provisioner (CreateVolume's
// mutable parameters): a PVC moved to a class gets its QoS limits in the
// image's metadata, scaled by its size (pvc1 is 2Gi after Expand); a class
// with a parameter that cannot change is Infeasible, with the key named
// in the PVC's events, and the volume keeps its limits; a PVC created in
// a class has its limits from the start.
func (f *flows) modify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	f.apply(t, ctx, vacYAML("gorbd-e2e-silver", map[string]string{"baseIops": "1000", "iopsPerGiB": "100",
		"baseVolSizeBytes": "1073741824", "maxIops": "5000", "rbd_qos_write_bps_limit": "10M"})+
		"---\n"+vacYAML("gorbd-e2e-bad", map[string]string{"pool": "elsewhere", "baseIops": "5"}))
	patch := func(class string) {
		t.Helper()
		if _, err := f.k.kubectl(ctx, nil, "patch", "pvc", "pvc1", "-n", appNS, "-p",
			`{"spec":{"volumeAttributesClassName":"`+class+`"}}`); err != nil {
			t.Fatal(err)
		}
	}
	current := func(class string) {
		t.Helper()
		waitFor(ctx, t, 2*time.Minute, "pvc1 in class "+class, func() (bool, error) {
			var pvc corev1.PersistentVolumeClaim
			if err := f.k.getJSON(ctx, &pvc, "pvc", "pvc1", "-n", appNS); err != nil {
				return false, err
			}
			cur := pvc.Status.CurrentVolumeAttributesClassName
			if cur == nil || *cur != class || pvc.Status.ModifyVolumeStatus != nil {
				return false, fmt.Errorf("current %v, modify status %+v; events: %s", cur, pvc.Status.ModifyVolumeStatus, f.events(ctx, "pvc1"))
			}
			return true, nil
		})
	}
	patch("gorbd-e2e-silver")
	current("gorbd-e2e-silver")
	f.waitConfig(t, ctx, f.pvc1Image, map[string]string{"rbd_qos_iops_limit": "1100", "rbd_qos_write_bps_limit": "10M"})

	patch("gorbd-e2e-bad")
	waitFor(ctx, t, 2*time.Minute, "pvc1's move to gorbd-e2e-bad Infeasible", func() (bool, error) {
		var pvc corev1.PersistentVolumeClaim
		if err := f.k.getJSON(ctx, &pvc, "pvc", "pvc1", "-n", appNS); err != nil {
			return false, err
		}
		ms := pvc.Status.ModifyVolumeStatus
		if ms == nil || ms.Status != corev1.PersistentVolumeClaimModifyVolumeInfeasible {
			return false, fmt.Errorf("modify status %+v", ms)
		}
		if ev := f.events(ctx, "pvc1"); !strings.Contains(ev, "pool") {
			return false, fmt.Errorf("events do not name the parameter pool: %s", ev)
		}
		return true, nil
	})
	f.waitConfig(t, ctx, f.pvc1Image, map[string]string{"rbd_qos_iops_limit": "1100"})
	patch("gorbd-e2e-silver")
	current("gorbd-e2e-silver")

	y := pvcYAML("pvc-vac", "gorbd-e2e", "1Gi", "")
	y = strings.Replace(y, "  storageClassName:", "  volumeAttributesClassName: gorbd-e2e-silver\n  storageClassName:", 1)
	f.apply(t, ctx, y)
	pv := f.waitBound(t, ctx, "pvc-vac")
	img := pv.Spec.CSI.VolumeAttributes["imageName"]
	f.waitConfig(t, ctx, img, map[string]string{"rbd_qos_iops_limit": "1000", "rbd_qos_write_bps_limit": "10M"})
	if got := pv.Spec.CSI.VolumeAttributes["csi.storage.k8s.io/pv/name"]; got != pv.Name {
		t.Errorf("PV %s volumeAttributes name it %q (the node's metrics label)", pv.Name, got)
	}
	t.Logf("pvc1 in gorbd-e2e-silver: image %s iops 1100 (1000 + 100/GiB above 1GiB at 2GiB); pvc-vac created in it: image %s iops 1000", f.pvc1Image, img)
}
