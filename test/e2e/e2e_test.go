package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

const (
	release   = "csi-gorbd"
	releaseNS = "csi-gorbd-e2e"
	appNS     = "default"
	gib       = 1 << 30
	// The chart passes no --instance-id, so the journal objects are csi.*.default.
	instance = "default"
	// imageFeatures the e2e StorageClass asks for (non-default on purpose).
	features = "layering,exclusive-lock"
)

// volumeSnapshot is the part of a VolumeSnapshot the flows read.
type volumeSnapshot struct {
	Status *struct {
		ReadyToUse                     *bool  `json:"readyToUse"`
		BoundVolumeSnapshotContentName string `json:"boundVolumeSnapshotContentName"`
		Error                          *struct {
			Message string `json:"message"`
		} `json:"error"`
	} `json:"status"`
}

// TestKubernetesE2E is the whole suite on one control plane: chart checks,
// then the volume flows, then the "nothing left behind" check on the pool.
func TestKubernetesE2E(t *testing.T) {
	bins := binsDir(t)
	cl := cephtest.Need(t, "pacific")
	helm := helmPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("/tmp", "gorbd-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	ps := &procs{dir: dir}
	defer func() {
		ps.stopAll()
		if t.Failed() || os.Getenv("GORBD_E2E_KEEP") != "" {
			ps.dumpLogs(t, 40)
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	plugin := pluginBinary(t, dir)

	// A dedicated pool, removed at the end.
	cp := ceph{c: cl}
	run := randSuffix()
	pool := "gorbd-e2e-" + run
	if err := cp.createPool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if os.Getenv("GORBD_E2E_KEEP") != "" {
			t.Logf("pool %s kept", pool)
			return
		}
		dctx, dcancel := context.WithTimeout(context.Background(), time.Minute)
		defer dcancel()
		if err := cp.deletePool(dctx, pool); err != nil {
			t.Errorf("removing pool %s: %v", pool, err)
		}
	}()

	t0 := time.Now()
	k := startKube(ctx, t, bins, dir, ps, kubeOpts{})
	k.installSnapshotCRDs(ctx, t)
	t.Logf("control plane up in %v", time.Since(t0).Round(time.Millisecond))

	// 1. The whole chart, default and non-default values, through a
	// server-side dry-run.
	t.Run("ChartDryRun", func(t *testing.T) {
		def := render(ctx, t, helm, release, "kube-system")
		k.dryRun(ctx, t, "kube-system", def)
		full := render(ctx, t, helm, "gorbd", "csi", "../chart/testdata/full-values.yaml")
		k.dryRun(ctx, t, "csi", full)
		t.Logf("default: %d objects, full: %d objects accepted", len(def), len(full))
	})

	// 2. The chart configured for this cluster, applied for real.
	clusterID := "e2e-" + run
	values := map[string]any{
		"clusters": map[string]any{"list": []any{map[string]any{"clusterID": clusterID, "monitors": []string{"v2:" + cl.Get("CEPH_MON_V2")}}}},
		"secret":   map[string]any{"create": true, "userID": "admin", "userKey": cl.Get("CEPH_ADMIN_KEY")},
		"storageClass": map[string]any{"create": true, "name": "gorbd-e2e", "clusterID": clusterID, "pool": pool,
			"imageFeatures": features, "volumeNamePrefix": "e2e-"},
		"volumeSnapshotClass": map[string]any{"create": true, "name": "gorbd-e2e-snap"},
		"controller":          map[string]any{"replicas": 1},
		// Sidecar work queues back off to 5 minutes by default; a test wants seconds.
		"sidecars": map[string]any{
			"provisioner": map[string]any{"extraArgs": []string{"--retry-interval-max=5s"}},
			"snapshotter": map[string]any{"extraArgs": []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}},
			"resizer":     map[string]any{"extraArgs": []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}},
			"attacher":    map[string]any{"extraArgs": []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}},
		},
	}
	vf := writeValues(t, dir, "values.yaml", values)
	objs := render(ctx, t, helm, release, releaseNS, vf)
	k.dryRun(ctx, t, releaseNS, objs)
	if _, err := k.kubectl(ctx, manifest(objs), "apply", "--validate=strict", "-n", releaseNS, "-f", "-"); err != nil {
		t.Fatalf("applying the chart: %v", err)
	}
	t.Logf("chart applied: %s", kindsOf(objs))

	// 3. The controller pod's processes, as the rendered Deployment says.
	var dep appsv1.Deployment
	find(t, objs, "Deployment", release+"-controller", &dep)
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap", "", &cm)
	metricsURL := startController(ctx, t, k, ps, plugin, dir, &dep, &cm, releaseNS)
	t.Logf("controller plugin and sidecars running (%v since start)", time.Since(t0).Round(time.Millisecond))

	f := &flows{k: k, ceph: cp, pool: pool, metricsURL: metricsURL}
	if !t.Run("Provision", f.provision) ||
		!t.Run("Snapshot", f.snapshot) ||
		!t.Run("RestoreAndClone", f.restoreAndClone) ||
		!t.Run("Expand", f.expand) ||
		!t.Run("Modify", f.modify) ||
		!t.Run("Attach", f.attach) {
		return
	}
	t.Run("BadParameters", func(t *testing.T) { f.badParameters(t, objs) })
	t.Run("DeleteLeavesNothing", f.deleteAll)
	// The sidecars ran as the chart's ServiceAccount: any RBAC denial they
	// logged is a permission the chart lacks. (The snapshotter probes the
	// group-snapshot API, which the driver does not offer, and turns the
	// feature off when it may not list it: expected.)
	for _, p := range ps.list {
		if !strings.HasPrefix(p.name, "csi-") || p.name == "csi-gorbd-controller" {
			continue
		}
		b, err := os.ReadFile(p.log)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "is forbidden") && !strings.Contains(line, "groupsnapshot") {
				t.Errorf("%s was denied by the chart's RBAC: %s", p.name, line)
			}
		}
	}
	t.Logf("suite done in %v", time.Since(t0).Round(time.Millisecond))
}

// startController runs our plugin and the sidecars with the rendered
// Deployment's arguments (paths moved under dir), the sidecars
// authenticated as the chart's controller ServiceAccount, and
// snapshot-controller (a cluster add-on, not part of the chart) as admin.
func startController(ctx context.Context, t *testing.T, k *kube, ps *procs, plugin, dir string, dep *appsv1.Deployment, cm *corev1.ConfigMap, ns string) (metricsURL string) {
	t.Helper()
	conf := filepath.Join(dir, "etc")
	if err := os.MkdirAll(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range cm.Data {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "csi.sock")
	paths := strings.NewReplacer("unix:///csi/csi.sock", "unix://"+sock, "/csi/csi.sock", sock,
		"/etc/csi-gorbd/", conf+"/", "/run/csi-gorbd", filepath.Join(dir, "state"))
	env := map[string]string{"NODE_ID": "e2e-node", "POD_NAMESPACE": ns}
	expand := func(a string) string {
		a = paths.Replace(a)
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		return a
	}
	pod := dep.Spec.Template.Spec
	saKC := k.serviceAccountKubeconfig(ctx, t, ns, pod.ServiceAccountName)
	byName := map[string]corev1.Container{}
	for _, c := range pod.Containers {
		byName[c.Name] = c
	}

	c, ok := byName["csi-gorbd"]
	if !ok {
		t.Fatal("rendered Deployment has no csi-gorbd container")
	}
	var args []string
	metricsPort := freePort(t)
	for i, a := range c.Args {
		if i > 0 && c.Args[i-1] == "--metrics-address" {
			a = fmt.Sprintf("127.0.0.1:%d", metricsPort)
		}
		args = append(args, expand(a))
	}
	// --node-directory=kubernetes reads CSINodes as the pod would: the
	// API server from KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount's
	// token and CA from its directory.
	saDir, apiEnv := k.serviceAccountDir(ctx, t, ns, pod.ServiceAccountName)
	args = append(args, "--kube-serviceaccount-dir="+saDir)
	drv := ps.startEnv(t, "csi-gorbd-controller", apiEnv, plugin, args...)
	waitFor(ctx, t, 30*time.Second, "controller plugin socket", func() (bool, error) {
		if err := drv.alive(); err != nil {
			t.Fatal(err)
		}
		_, err := os.Stat(sock)
		return err == nil, err
	})
	waitFor(ctx, t, 30*time.Second, "controller plugin /healthz", func() (bool, error) {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort))
	})

	sidecars := map[string]string{"csi-provisioner": "csi-provisioner", "csi-snapshotter": "csi-snapshotter", "csi-resizer": "csi-resizer",
		"csi-attacher": "csi-attacher"}
	for _, name := range []string{"csi-provisioner", "csi-snapshotter", "csi-resizer", "csi-attacher"} {
		c, ok := byName[name]
		if !ok {
			t.Fatalf("rendered Deployment has no %s container", name)
		}
		var args []string
		for _, a := range c.Args {
			args = append(args, expand(a))
		}
		args = append(args, "--kubeconfig="+saKC)
		ps.start(t, name, filepath.Join(k.bins, sidecars[name]), args...)
	}
	ps.start(t, "snapshot-controller", filepath.Join(k.bins, "snapshot-controller"), "--kubeconfig="+k.kubeconfig,
		"--leader-election=false", "--retry-interval-start=500ms", "--retry-interval-max=5s")
	return fmt.Sprintf("http://127.0.0.1:%d", metricsPort)
}

// flows holds what the volume flows share.
type flows struct {
	k    *kube
	ceph ceph
	pool string
	// image names, from the PVs' volumeAttributes
	pvc1Image string
	// the plugin's metrics/health endpoint (the chart's probes use it)
	metricsURL string
}

func (f *flows) apply(t *testing.T, ctx context.Context, y string) {
	t.Helper()
	if _, err := f.k.kubectl(ctx, []byte(y), "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

func pvcYAML(name, sc, size, dataSource string) string {
	y := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s, namespace: %s}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: %s
  resources: {requests: {storage: %s}}
`, name, appNS, sc, size)
	if dataSource != "" {
		y += "  dataSource: " + dataSource + "\n"
	}
	return y
}

// waitBound waits until the PVC is Bound and returns its PV.
func (f *flows) waitBound(t *testing.T, ctx context.Context, name string) corev1.PersistentVolume {
	t.Helper()
	var pvc corev1.PersistentVolumeClaim
	waitFor(ctx, t, 2*time.Minute, "PVC "+name+" Bound", func() (bool, error) {
		if err := f.k.getJSON(ctx, &pvc, "pvc", name, "-n", appNS); err != nil {
			return false, err
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			return false, fmt.Errorf("phase %q; events: %s", pvc.Status.Phase, f.events(ctx, name))
		}
		return true, nil
	})
	var pv corev1.PersistentVolume
	if err := f.k.getJSON(ctx, &pv, "pv", pvc.Spec.VolumeName); err != nil {
		t.Fatal(err)
	}
	if pv.Spec.CSI == nil {
		t.Fatalf("PV %s is not a CSI volume", pv.Name)
	}
	return pv
}

// events returns the PVC's events as "Reason: message" lines.
func (f *flows) events(ctx context.Context, pvc string) string {
	var el corev1.EventList
	if err := f.k.getJSON(ctx, &el, "events", "-n", appNS, "--field-selector", "involvedObject.kind=PersistentVolumeClaim,involvedObject.name="+pvc); err != nil {
		return err.Error()
	}
	var s []string
	for _, e := range el.Items {
		s = append(s, e.Type+" "+e.Reason+": "+e.Message)
	}
	return strings.Join(s, " | ")
}

func (f *flows) provision(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.apply(t, ctx, pvcYAML("pvc1", "gorbd-e2e", "1Gi", ""))
	pv := f.waitBound(t, ctx, "pvc1")
	attrs := pv.Spec.CSI.VolumeAttributes
	if attrs["pool"] != f.pool || attrs["imageName"] == "" {
		t.Fatalf("PV %s volumeAttributes %v: want pool %s and an imageName", pv.Name, attrs, f.pool)
	}
	f.pvc1Image = attrs["imageName"]
	if !strings.HasPrefix(f.pvc1Image, "e2e-") {
		t.Errorf("image %s does not carry the StorageClass volumeNamePrefix e2e-", f.pvc1Image)
	}
	ii, err := f.ceph.info(ctx, f.pool, f.pvc1Image)
	if err != nil {
		t.Fatal(err)
	}
	if ii.Size != gib {
		t.Errorf("image %s size %d, want %d", f.pvc1Image, ii.Size, gib)
	}
	for _, want := range strings.Split(features, ",") {
		if !slices.Contains(ii.Features, want) {
			t.Errorf("image %s features %v lack %s", f.pvc1Image, ii.Features, want)
		}
	}
	if ii.Parent != nil {
		t.Errorf("a new volume has a parent: %+v", *ii.Parent)
	}
	// The chart's readinessProbe: ready once a Ceph session works.
	if ok, err := httpOK(ctx, f.metricsURL+"/readyz"); !ok {
		t.Errorf("plugin /readyz after provisioning: %v", err)
	}
	t.Logf("pvc1 Bound to %s, image %s/%s size %d features %v", pv.Name, f.pool, f.pvc1Image, ii.Size, ii.Features)
}

func (f *flows) snapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.apply(t, ctx, fmt.Sprintf(`apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: snap1, namespace: %s}
spec: {volumeSnapshotClassName: gorbd-e2e-snap, source: {persistentVolumeClaimName: pvc1}}
`, appNS))
	var vs volumeSnapshot
	waitFor(ctx, t, 2*time.Minute, "VolumeSnapshot snap1 readyToUse", func() (bool, error) {
		if err := f.k.getJSON(ctx, &vs, "volumesnapshot", "snap1", "-n", appNS); err != nil {
			return false, err
		}
		if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
			b, _ := json.Marshal(vs.Status)
			return false, fmt.Errorf("status %s", b)
		}
		return true, nil
	})
	var snaps []struct {
		Name string `json:"name"`
	}
	if err := f.ceph.json(ctx, &snaps, "rbd", "snap", "ls", "--all", f.pool+"/"+f.pvc1Image); err != nil {
		t.Fatal(err)
	}
	if len(snaps) == 0 {
		t.Fatalf("snap1 is readyToUse but image %s has no RBD snapshot", f.pvc1Image)
	}
	t.Logf("snap1 readyToUse, content %s, RBD snapshots of %s: %v", vs.Status.BoundVolumeSnapshotContentName, f.pvc1Image, snaps)
}

func (f *flows) restoreAndClone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.apply(t, ctx, pvcYAML("pvc-restore", "gorbd-e2e", "1Gi", "{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap1}")+
		"---\n"+pvcYAML("pvc-clone", "gorbd-e2e", "1Gi", "{kind: PersistentVolumeClaim, name: pvc1}"))
	for _, name := range []string{"pvc-restore", "pvc-clone"} {
		pv := f.waitBound(t, ctx, name)
		img := pv.Spec.CSI.VolumeAttributes["imageName"]
		ii, err := f.ceph.info(ctx, f.pool, img)
		if err != nil {
			t.Fatal(err)
		}
		// A clone, not a copy: the image hangs from a snapshot of pvc1's image.
		if ii.Parent == nil || ii.Parent.Image != f.pvc1Image || ii.Parent.Pool != f.pool {
			t.Errorf("%s: image %s parent %+v, want a clone of %s/%s", name, img, ii.Parent, f.pool, f.pvc1Image)
			continue
		}
		if ii.Size != gib {
			t.Errorf("%s: image %s size %d, want %d", name, img, ii.Size, gib)
		}
		t.Logf("%s Bound, image %s is a clone of %s/%s@%s", name, img, ii.Parent.Pool, ii.Parent.Image, ii.Parent.Snapshot)
	}
}

func (f *flows) expand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := f.k.kubectl(ctx, nil, "patch", "pvc", "pvc1", "-n", appNS, "-p", `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`); err != nil {
		t.Fatal(err)
	}
	var pvName string
	waitFor(ctx, t, 2*time.Minute, "PV of pvc1 at 2Gi", func() (bool, error) {
		var pvc corev1.PersistentVolumeClaim
		if err := f.k.getJSON(ctx, &pvc, "pvc", "pvc1", "-n", appNS); err != nil {
			return false, err
		}
		pvName = pvc.Spec.VolumeName
		var pv corev1.PersistentVolume
		if err := f.k.getJSON(ctx, &pv, "pv", pvName); err != nil {
			return false, err
		}
		c := pv.Spec.Capacity[corev1.ResourceStorage]
		if c.Value() != 2*gib {
			return false, fmt.Errorf("PV capacity %s; PVC conditions %v; events: %s", c.String(), pvc.Status.Conditions, f.events(ctx, "pvc1"))
		}
		return true, nil
	})
	ii, err := f.ceph.info(ctx, f.pool, f.pvc1Image)
	if err != nil {
		t.Fatal(err)
	}
	if ii.Size != 2*gib {
		t.Fatalf("PV %s is 2Gi but image %s is %d bytes", pvName, f.pvc1Image, ii.Size)
	}
	t.Logf("pvc1 expanded: PV %s 2Gi, image %s %d bytes", pvName, f.pvc1Image, ii.Size)
}

// badParameters: StorageClasses that cannot work must tell the user, in
// the PVC's events, what to fix.
func (f *flows) badParameters(t *testing.T, objs []object) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var sc struct {
		Parameters map[string]string `json:"parameters"`
	}
	find(t, objs, "StorageClass", "gorbd-e2e", &sc)
	cases := []struct {
		name   string
		change func(p map[string]string)
		want   []string // substrings of one ProvisioningFailed event
	}{
		{"bad-cluster", func(p map[string]string) { p["clusterID"] = "no-such-cluster" },
			[]string{`clusterID "no-such-cluster"`, "clusters file"}},
		{"bad-nopool", func(p map[string]string) { delete(p, "pool") },
			[]string{"pool is required"}},
		{"bad-nosecret", func(p map[string]string) {
			delete(p, "csi.storage.k8s.io/provisioner-secret-name")
			delete(p, "csi.storage.k8s.io/provisioner-secret-namespace")
		}, []string{"userID", "userKey"}},
		{"bad-secretname", func(p map[string]string) { p["csi.storage.k8s.io/provisioner-secret-name"] = "no-such-secret" },
			[]string{"no-such-secret"}},
	}
	for _, c := range cases {
		p := map[string]string{}
		for k, v := range sc.Parameters {
			p[k] = v
		}
		c.change(p)
		obj := map[string]any{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
			"metadata": map[string]any{"name": "gorbd-e2e-" + c.name}, "provisioner": "rbd.csi-gorbd.io",
			"parameters": p, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}
		b, _ := json.Marshal(obj)
		f.apply(t, ctx, string(b))
		f.apply(t, ctx, pvcYAML(c.name, "gorbd-e2e-"+c.name, "1Gi", ""))
	}
	for _, c := range cases {
		var got string
		waitFor(ctx, t, 90*time.Second, "ProvisioningFailed event on "+c.name+" saying "+strings.Join(c.want, " + "), func() (bool, error) {
			var el corev1.EventList
			if err := f.k.getJSON(ctx, &el, "events", "-n", appNS, "--field-selector", "involvedObject.name="+c.name); err != nil {
				return false, err
			}
			for _, e := range el.Items {
				if e.Type != corev1.EventTypeWarning || e.Reason != "ProvisioningFailed" {
					continue
				}
				ok := true
				for _, w := range c.want {
					ok = ok && strings.Contains(e.Message, w)
				}
				if ok {
					got = e.Message
					return true, nil
				}
			}
			return false, fmt.Errorf("events: %s", f.events(ctx, c.name))
		})
		var pvc corev1.PersistentVolumeClaim
		if err := f.k.getJSON(ctx, &pvc, "pvc", c.name, "-n", appNS); err != nil {
			t.Fatal(err)
		}
		if pvc.Status.Phase != corev1.ClaimPending {
			t.Errorf("%s: phase %s, want Pending", c.name, pvc.Status.Phase)
		}
		t.Logf("%s: %s", c.name, got)
	}
	for _, c := range cases {
		if _, err := f.k.kubectl(ctx, nil, "delete", "pvc", c.name, "-n", appNS, "--wait=false"); err != nil {
			t.Error(err)
		}
		if _, err := f.k.kubectl(ctx, nil, "delete", "storageclass", "gorbd-e2e-"+c.name); err != nil {
			t.Error(err)
		}
	}
}

// deleteAll deletes every claim and the snapshot at once (as deleting a
// namespace would) and checks that Kubernetes and the pool end up empty: no
// PV, VolumeSnapshotContent, image, trash entry or journal key.
func (f *flows) deleteAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := f.k.kubectl(ctx, nil, "delete", "volumesnapshot,pvc", "--all", "-n", appNS, "--wait=false"); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 3*time.Minute, "no PVC, PV, VolumeSnapshot or VolumeSnapshotContent", func() (bool, error) {
		out, err := f.k.kubectl(ctx, nil, "get", "pvc,pv,volumesnapshot,volumesnapshotcontent", "-A", "-o", "name")
		if err != nil {
			return false, err
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			return false, fmt.Errorf("still there: %s", strings.ReplaceAll(s, "\n", " "))
		}
		return true, nil
	})
	waitFor(ctx, t, time.Minute, "empty pool "+f.pool, func() (bool, error) {
		left, err := f.ceph.leftovers(ctx, f.pool, instance)
		if err != nil {
			return false, err
		}
		if len(left) > 0 {
			return false, fmt.Errorf("left behind: %s", strings.Join(left, ", "))
		}
		return true, nil
	})
	t.Logf("everything deleted; pool %s has no image, trash entry or journal key", f.pool)
}
