package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// The node suite's names.
const (
	nodeRelease   = "csi-gorbd"
	nodeReleaseNS = "csi-gorbd"
	// The chart's StorageClass and VolumeSnapshotClass, default names
	// (testdriver.yaml names them for the upstream suite).
	nodeSC        = "csi-gorbd"
	nodeSnapClass = "csi-gorbd-snapclass"
	driverName    = "rbd.csi-gorbd.io"
)

// nodeCluster is a whole Kubernetes cluster with csi-gorbd installed by its
// chart: the control plane, the controller Deployment's containers and
// snapshot-controller on the host (as TestKubernetesE2E runs them), and the
// node VM whose kubelet runs the chart's node DaemonSet. Tests share one
// (sharedCluster); TestMain tears it down.
type nodeCluster struct {
	dir  string
	ps   *procs
	k    *kube
	node *nodeVM
	helm string
	ceph ceph
	pool string
	// clusterID of the pool's cluster in the chart's clusters ConfigMap
	clusterID string
	// cephPorts are the cluster's mon and OSD ports ("a,b,lo-hi")
	cephPorts string
	// valuesFile is the helm values the release was installed with.
	valuesFile string
	// pluginImages are the csi-gorbd image references imported into the
	// node: [0] is installed; [1], if there is one, is the upgrade target.
	pluginImages []string
	// metricsURL is the host controller plugin's metrics/health endpoint.
	metricsURL string
	// timings of the setup, printed in the summary
	timings []string
}

var shared struct {
	mu     sync.Mutex
	c      *nodeCluster
	failed bool
}

// sharedCluster returns the suite's cluster, setting it up on first use.
// A failed setup fails every later caller at once.
func sharedCluster(t *testing.T) *nodeCluster {
	t.Helper()
	bins := binsDir(t)
	imageDir := nodeImageDir(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		return shared.c
	}
	if shared.failed {
		t.Fatal("the node cluster's setup failed in an earlier test")
	}
	shared.failed = true // until setup returns (t.Fatal inside exits the goroutine)
	c := setupCluster(t, bins, imageDir)
	shared.failed = false
	shared.c = c
	return c
}

// teardownShared stops the shared cluster (TestMain). With failed tests or
// GORBD_E2E_KEEP the logs are kept and their tails printed.
func teardownShared(failed bool) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	c := shared.c
	if c == nil {
		return
	}
	for _, l := range c.timings {
		fmt.Printf("k8s-setup: %s\n", l)
	}
	if hold := os.Getenv("GORBD_E2E_HOLD"); hold != "" {
		// Debugging: keep the cluster up until the file is removed.
		if err := os.WriteFile(hold, []byte("rm this file to tear the cluster down\n"), 0o600); err == nil {
			fmt.Printf("holding the cluster: KUBECONFIG=%s, guest agent %s/exec; rm %s to end\n", c.k.kubeconfig, c.node.agentURL, hold)
			for {
				if _, err := os.Stat(hold); err != nil {
					break
				}
				time.Sleep(time.Second)
			}
		}
	}
	c.ps.stopAll()
	keep := failed || os.Getenv("GORBD_E2E_KEEP") != ""
	if keep {
		fmt.Printf("node cluster logs kept in %s\n", c.dir)
	} else {
		os.RemoveAll(c.dir)
	}
	if os.Getenv("GORBD_E2E_KEEP") != "" {
		fmt.Printf("pool %s kept\n", c.pool)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.ceph.deletePool(ctx, c.pool); err != nil {
		fmt.Printf("removing pool %s: %v\n", c.pool, err)
	}
}

// setupCluster brings everything up; the node VM boots while the chart is
// installed and the controller starts.
func setupCluster(t *testing.T, bins, imageDir string) *nodeCluster {
	t0 := time.Now()
	cl := cephtest.Need(t, "pacific")
	for _, b := range []string{"kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bins, b)); err != nil {
			t.Fatalf("GORBD_E2E_BINS lacks %s (rebuild with test/e2e/build-bins.sh): %v", b, err)
		}
	}
	plugin := pluginImages(t, imageDir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("/tmp", "gorbd-node-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	c := &nodeCluster{dir: dir, ps: &procs{dir: dir}, helm: helmPath(t), ceph: ceph{c: cl}}
	ok := false
	defer func() {
		if !ok { // a failed setup leaves nothing running
			c.dump(t)
			c.ps.stopAll()
			t.Logf("logs kept in %s", dir)
		}
	}()
	c.pluginImages = plugin
	pluginBin := pluginBinary(t, dir)

	run := randSuffix()
	c.pool = "gorbd-node-" + run
	if err := c.ceph.createPool(ctx, c.pool); err != nil {
		t.Fatal(err)
	}
	c.clusterID = "e2e-" + run

	c.k = startKube(ctx, t, bins, dir, c.ps, kubeOpts{nodeName: nodeName})
	c.k.installSnapshotCRDs(ctx, t)
	c.timing("control plane up", time.Since(t0))

	// The node boots (a minute or two under TCG) while the chart goes in.
	c.cephPorts = cephPorts(t, cl)
	c.node = bootNode(ctx, t, c.k, c.ps, dir, imageDir, nodeConfig{cephPorts: c.cephPorts})

	repo, tag, _ := strings.Cut(plugin[0], ":")
	values := map[string]any{
		"image": map[string]any{"repository": repo, "tag": tag},
		"clusters": map[string]any{"list": []any{map[string]any{"clusterID": c.clusterID,
			"monitors": []string{"v2:" + cl.Get("CEPH_MON_V2")}}}},
		"secret": map[string]any{"create": true, "userID": "admin", "userKey": cl.Get("CEPH_ADMIN_KEY")},
		"storageClass": map[string]any{"create": true, "clusterID": c.clusterID, "pool": c.pool,
			"imageFeatures": "layering,exclusive-lock"},
		"volumeSnapshotClass": map[string]any{"create": true},
		"controller":          map[string]any{"replicas": 1},
		// The Go module proxy refuses livenessprobe, so there is no image
		// of it; the plugin's own /healthz liveness probe stays.
		"sidecars": map[string]any{
			"livenessProbe": map[string]any{"enabled": false},
			"provisioner":   map[string]any{"extraArgs": []string{"--retry-interval-max=5s"}},
			"snapshotter":   map[string]any{"extraArgs": []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}},
			"resizer":       map[string]any{"extraArgs": []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}},
		},
		"logLevel": 4,
	}
	c.valuesFile = writeValues(t, dir, "values.yaml", values)
	args := []string{"install", nodeRelease, chartDir, "--namespace", nodeReleaseNS, "--create-namespace", "-f", c.valuesFile}
	if set := os.Getenv("GORBD_E2E_HELM_SET"); set != "" {
		args = append(args, "--set", set) // trying a chart variant
	}
	if _, err := c.helmCmd(ctx, args...); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	objs := c.releaseObjects(ctx, t)
	var dep appsv1.Deployment
	find(t, objs, "Deployment", nodeRelease+"-controller", &dep)
	var cm corev1.ConfigMap
	find(t, objs, "ConfigMap", "", &cm)
	c.metricsURL = startController(ctx, t, c.k, c.ps, pluginBin, dir, &dep, &cm, nodeReleaseNS)
	c.timing("chart installed, controller running", time.Since(t0))

	c.node.waitReady(ctx, t, c.k)
	c.timing("node Ready (qemu start -> Ready)", time.Since(c.node.booted))
	pod := c.waitPluginPod(ctx, t, "")
	c.timing("node plugin pod "+pod.Name+" Ready (qemu start -> Ready)", time.Since(c.node.booted))
	c.waitCSINode(ctx, t)
	c.timing("CSINode lists "+driverName+" (qemu start -> registered)", time.Since(c.node.booted))
	c.timing("setup total", time.Since(t0))
	ok = true
	return c
}

func (c *nodeCluster) timing(what string, d time.Duration) {
	c.timings = append(c.timings, fmt.Sprintf("%s: %v", what, d.Round(100*time.Millisecond)))
}

// helmCmd runs helm against the cluster.
func (c *nodeCluster) helmCmd(ctx context.Context, args ...string) ([]byte, error) {
	return run(ctx, nil, nil, c.helm, append(args, "--kubeconfig", c.k.kubeconfig)...)
}

// releaseObjects is the release's manifest as helm applied it.
func (c *nodeCluster) releaseObjects(ctx context.Context, t *testing.T) []object {
	t.Helper()
	out, err := c.helmCmd(ctx, "get", "manifest", nodeRelease, "--namespace", nodeReleaseNS)
	if err != nil {
		t.Fatal(err)
	}
	return splitManifest(t, out)
}

// waitPluginPod waits until the DaemonSet's pod on the node is Running and
// Ready and is not the pod named old; it returns the pod.
func (c *nodeCluster) waitPluginPod(ctx context.Context, t *testing.T, old string) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	waitFor(ctx, t, 5*time.Minute, "node plugin pod Running and Ready on "+nodeName, func() (bool, error) {
		var pl corev1.PodList
		if err := c.k.getJSON(ctx, &pl, "pods", "-n", nodeReleaseNS, "-l", "app.kubernetes.io/component=node"); err != nil {
			return false, err
		}
		for _, p := range pl.Items {
			if p.Name == old || p.DeletionTimestamp != nil {
				continue
			}
			if p.Spec.NodeName != nodeName {
				return false, fmt.Errorf("pod %s on node %q", p.Name, p.Spec.NodeName)
			}
			if p.Status.Phase == corev1.PodRunning && podReady(&p) {
				found = p
				return true, nil
			}
			return false, fmt.Errorf("pod %s: %s; events: %s", p.Name, podState(&p), c.podEvents(ctx, nodeReleaseNS, p.Name))
		}
		return false, errPending
	})
	return found
}

// waitCSINode waits until the kubelet registered the driver on the node.
func (c *nodeCluster) waitCSINode(ctx context.Context, t *testing.T) {
	t.Helper()
	waitFor(ctx, t, 3*time.Minute, "CSINode "+nodeName+" lists "+driverName, func() (bool, error) {
		var cn storagev1.CSINode
		if err := c.k.getJSON(ctx, &cn, "csinode", nodeName); err != nil {
			return false, err
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == driverName {
				if d.NodeID != nodeName {
					return false, fmt.Errorf("driver registered with node ID %q, want %q", d.NodeID, nodeName)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("drivers %v", cn.Spec.Drivers)
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podState summarizes a pod's phase and its containers' states.
func podState(p *corev1.Pod) string {
	s := []string{string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s = append(s, fmt.Sprintf("%s waiting %s %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			s = append(s, fmt.Sprintf("%s terminated %s exit %d", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
		case cs.State.Running != nil:
			s = append(s, fmt.Sprintf("%s running (restarts %d, ready %v)", cs.Name, cs.RestartCount, cs.Ready))
		}
	}
	return strings.Join(s, ", ")
}

// podEvents returns the pod's events as "Type Reason: message" lines.
func (c *nodeCluster) podEvents(ctx context.Context, ns, pod string) string {
	var el corev1.EventList
	if err := c.k.getJSON(ctx, &el, "events", "-n", ns, "--field-selector", "involvedObject.kind=Pod,involvedObject.name="+pod); err != nil {
		return err.Error()
	}
	var s []string
	for _, e := range el.Items {
		s = append(s, e.Type+" "+e.Reason+": "+e.Message)
	}
	return strings.Join(s, " | ")
}

// dump logs what helps debugging a failure: host logs, the node's pods and
// the guest's logs.
func (c *nodeCluster) dump(t *testing.T) {
	c.ps.dumpLogs(t, 40)
	if c.k == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := c.k.kubectl(ctx, nil, "get", "nodes,pods,pvc,pv,volumeattachments,volumesnapshots", "-A", "-o", "wide")
	t.Logf("---- cluster objects\n%s", out)
	out, _ = c.k.kubectl(ctx, nil, "get", "events", "-A", "--sort-by=.lastTimestamp")
	if lines := strings.Split(string(out), "\n"); len(lines) > 60 {
		out = []byte(strings.Join(lines[len(lines)-60:], "\n"))
	}
	t.Logf("---- events\n%s", out)
	out, _ = c.k.kubectl(ctx, nil, "logs", "-n", nodeReleaseNS, "-l", "app.kubernetes.io/component=node", "--all-containers", "--tail=60")
	t.Logf("---- node plugin logs\n%s", out)
	if c.node != nil {
		c.node.dumpGuest(t, 40)
	}
}

// cephPorts lists the cluster's mon ports and OSD port range ("a,b,lo-hi"),
// the ports the guest forwards to the host.
func cephPorts(t *testing.T, cl *cephtest.Cluster) string {
	t.Helper()
	var ports []string
	for _, a := range []string{cl.Get("CEPH_MON_V2"), cl.Get("CEPH_MON_V1")} {
		if i := strings.LastIndex(a, ":"); i >= 0 {
			ports = append(ports, a[i+1:])
		}
	}
	conf, err := os.ReadFile(cl.Conf())
	if err != nil {
		t.Fatal(err)
	}
	var lo, hi string
	for _, line := range strings.Split(string(conf), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "ms bind port min":
			lo = strings.TrimSpace(v)
		case "ms bind port max":
			hi = strings.TrimSpace(v)
		}
	}
	if lo == "" || hi == "" {
		t.Fatalf("%s has no ms bind port min/max: the guest cannot forward the OSD ports", cl.Conf())
	}
	return strings.Join(append(ports, lo+"-"+hi), ",")
}

// pluginImages returns the csi-gorbd image references the node image
// holds (build.sh's images.list), sorted.
func pluginImages(t *testing.T, imageDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(imageDir, "images.list"))
	if err != nil {
		t.Fatal(err)
	}
	var plugin []string
	for _, ref := range strings.Fields(string(b)) {
		if repo, _, _ := strings.Cut(ref, ":"); strings.HasSuffix(repo, "/csi-gorbd") {
			plugin = append(plugin, ref)
		}
	}
	slices.Sort(plugin)
	if len(plugin) == 0 {
		t.Fatalf("the node image %s holds no csi-gorbd image (images.list: %s)", imageDir, strings.Fields(string(b)))
	}
	return plugin
}
