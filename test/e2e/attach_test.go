package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	storagev1 "k8s.io/api/storage/v1"
)

// serviceAccountDir writes what a pod of ServiceAccount sa finds in
// /var/run/secrets/kubernetes.io/serviceaccount (a token and the API
// server's CA) and returns the directory and the KUBERNETES_SERVICE_*
// environment that points at the API server.
func (k *kube) serviceAccountDir(ctx context.Context, t *testing.T, ns, sa string) (string, []string) {
	t.Helper()
	out, err := k.kubectl(ctx, nil, "create", "token", sa, "-n", ns, "--duration", "2h")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(k.dir, "sa-"+sa)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// kube-apiserver's self-signed serving certificate (--cert-dir) is its
	// own CA.
	ca, err := os.ReadFile(filepath.Join(k.dir, "apiserver-certs", "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(k.apiURL)
	if err != nil {
		t.Fatal(err)
	}
	return dir, []string{"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}
}

// attachments is the controller's record in the image's metadata
// (internal/csiceph.Attachments, read here as an operator would: `rbd
// image-meta get`).
type attachments struct {
	Nodes     map[string]struct{ Mode string } `json:"nodes"`
	Withdrawn map[string]int64                 `json:"withdrawn"`
}

func (f *flows) attachments(t *testing.T, ctx context.Context) attachments {
	t.Helper()
	out, err := f.ceph.cli(ctx, "rbd", "image-meta", "get", f.pool+"/"+f.pvc1Image, "csi-gorbd.attachments")
	if err != nil {
		t.Fatalf("rbd image-meta get: %v: %s", err, out)
	}
	var a attachments
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("attachments record %q: %v", out, err)
	}
	return a
}

// attach: the chart's csi-attacher, under the chart's RBAC, turns
// VolumeAttachments into ControllerPublish/Unpublish: the attachment is
// recorded in the image, a second node is refused while the first holds
// the ReadWriteOnce volume (the VolumeAttachment reports the driver's
// FailedPrecondition), and deleting the first VolumeAttachment
// unpublishes it (recorded as withdrawn), after which the second node's
// attach goes through. The node ids come from CSINodes (there is no
// kubelet here, so the test writes them as the kubelet would), which the
// controller plugin also reads to refuse unknown nodes.
func (f *flows) attach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const drv = "rbd.csi-gorbd.io"
	for _, n := range []string{"e2e-node-a", "e2e-node-b"} {
		f.apply(t, ctx, fmt.Sprintf(`apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: %s}
spec:
  drivers: [{name: %s, nodeID: %s-id}]
`, n, drv, n))
	}
	var pvc struct {
		Spec struct {
			VolumeName string `json:"volumeName"`
		} `json:"spec"`
	}
	if err := f.k.getJSON(ctx, &pvc, "pvc", "pvc1", "-n", appNS); err != nil {
		t.Fatal(err)
	}
	va := func(name, node string) string {
		return fmt.Sprintf(`apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: %s}
spec:
  attacher: %s
  nodeName: %s
  source: {persistentVolumeName: %s}
`, name, drv, node, pvc.Spec.VolumeName)
	}
	status := func(name string) (storagev1.VolumeAttachment, error) {
		var v storagev1.VolumeAttachment
		err := f.k.getJSON(ctx, &v, "volumeattachment", name)
		return v, err
	}
	waitAttached := func(name string) {
		t.Helper()
		waitFor(ctx, t, time.Minute, "VolumeAttachment "+name+" attached", func() (bool, error) {
			v, err := status(name)
			if err != nil {
				return false, err
			}
			if !v.Status.Attached {
				msg := ""
				if v.Status.AttachError != nil {
					msg = v.Status.AttachError.Message
				}
				return false, fmt.Errorf("not attached: %s", msg)
			}
			return true, nil
		})
	}

	f.apply(t, ctx, va("va-a", "e2e-node-a"))
	waitAttached("va-a")
	if a := f.attachments(t, ctx); len(a.Nodes) != 1 || a.Nodes["e2e-node-a-id"].Mode != "SINGLE_NODE_WRITER" {
		t.Fatalf("attachments after va-a: %+v", a)
	}

	// A second node for the ReadWriteOnce volume: the driver refuses.
	f.apply(t, ctx, va("va-b", "e2e-node-b"))
	waitFor(ctx, t, time.Minute, "va-b refused by ControllerPublish", func() (bool, error) {
		v, err := status("va-b")
		if err != nil {
			return false, err
		}
		if v.Status.Attached {
			t.Fatal("va-b attached while va-a holds the ReadWriteOnce volume")
		}
		if v.Status.AttachError == nil {
			return false, fmt.Errorf("no attach error yet")
		}
		if m := v.Status.AttachError.Message; !strings.Contains(m, "FailedPrecondition") || !strings.Contains(m, "e2e-node-a-id") {
			return false, fmt.Errorf("attach error %q does not name FailedPrecondition and node a", m)
		}
		return true, nil
	})

	// Detaching a: unpublished and recorded as withdrawn; b then attaches.
	if _, err := f.k.kubectl(ctx, nil, "delete", "volumeattachment", "va-a", "--wait=true", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	waitAttached("va-b")
	a := f.attachments(t, ctx)
	if len(a.Nodes) != 1 || a.Nodes["e2e-node-b-id"].Mode == "" || a.Withdrawn["e2e-node-a-id"] == 0 {
		t.Fatalf("attachments after detaching a and attaching b: %+v", a)
	}
	if _, err := f.k.kubectl(ctx, nil, "delete", "volumeattachment", "va-b", "--wait=true", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	if a := f.attachments(t, ctx); len(a.Nodes) != 0 || a.Withdrawn["e2e-node-b-id"] == 0 {
		t.Fatalf("attachments after detaching b: %+v", a)
	}
	t.Logf("VolumeAttachments: a attached, b refused while a held it, a detached (withdrawn), b attached and detached")
}
