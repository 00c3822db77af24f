package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// busyboxImage is the e2e framework's busybox (k8s.io/kubernetes/test/utils/image
// at the control plane's version); the node image holds it.
const busyboxImage = "registry.k8s.io/e2e-test-images/busybox:1.37.0-2"

// podStartTimeout bounds a Pod's start (NodeStage included). The node is a
// TCG VM: on the shared 2-core test machine at load average 30-40 one
// NodeStage (mkfs, or resize2fs of a restored image) took up to 2m40s; the
// upstream suite's testdriver.yaml allows 10m (Timeouts.PodStart).
const podStartTimeout = 10 * time.Minute

// podNS is the namespace of the Pod flows.
const podNS = "pods"

// flowTimes collects "flow: wall time" lines, printed at the end of TestPods.
type flowTimes struct{ lines []string }

func (f *flowTimes) add(format string, args ...any) {
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

// TestPods runs the volume flows through real Pods on the node VM's kubelet:
// the chart's node DaemonSet serves the volumes.
func TestPods(t *testing.T) {
	c := sharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	if _, err := c.k.kubectl(ctx, nil, "create", "namespace", podNS); err != nil {
		t.Fatal(err)
	}
	ft := &flowTimes{}
	defer func() {
		if t.Failed() {
			c.dump(t)
		}
		for _, l := range ft.lines {
			fmt.Printf("k8s-flow: %s\n", l)
		}
	}()
	// WriteDeleteRead leaves the claim "data" the later flows read.
	if !t.Run("WriteDeleteRead", func(t *testing.T) { c.flowWriteDeleteRead(ctx, t, ft) }) {
		return
	}
	t.Run("RawBlock", func(t *testing.T) { c.flowRawBlock(ctx, t, ft) })
	t.Run("SnapshotRestoreCloneROX", func(t *testing.T) { c.flowSnapshotRestore(ctx, t, ft) })
	t.Run("Expand", func(t *testing.T) { c.flowExpand(ctx, t, ft) })
	t.Run("FSGroup", func(t *testing.T) { c.flowFSGroup(ctx, t, ft) })
	t.Run("DeleteLeavesNothing", func(t *testing.T) { c.flowDeleteAll(ctx, t, ft) })
}

// flowDeleteAll deletes every Pod, claim and snapshot of the flows and
// checks that the node has no NBD device left and the pool no image, trash
// entry or journal key.
func (c *nodeCluster) flowDeleteAll(ctx context.Context, t *testing.T, ft *flowTimes) {
	t0 := time.Now()
	if _, err := c.k.kubectl(ctx, nil, "delete", "pods,volumesnapshots,pvc", "--all", "-n", podNS, "--wait=false"); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 5*time.Minute, "no Pod, PVC, PV, VolumeSnapshot, VolumeSnapshotContent or VolumeAttachment of the flows", func() (bool, error) {
		out, err := c.k.kubectl(ctx, nil, "get", "pods,pvc,volumesnapshot", "-n", podNS, "-o", "name")
		if err != nil {
			return false, err
		}
		out2, err := c.k.kubectl(ctx, nil, "get", "pv,volumesnapshotcontent,volumeattachment", "-o", "name")
		if err != nil {
			return false, err
		}
		if s := strings.TrimSpace(string(out) + string(out2)); s != "" {
			return false, fmt.Errorf("still there: %s", strings.ReplaceAll(s, "\n", " "))
		}
		return true, nil
	})
	if devs := c.nbdDevices(ctx, t); len(devs) != 0 {
		t.Errorf("NBD devices still connected on the node: %v", devs)
	}
	waitFor(ctx, t, 2*time.Minute, "empty pool "+c.pool, func() (bool, error) {
		left, err := c.ceph.leftovers(ctx, c.pool, instance)
		if err != nil {
			return false, err
		}
		return len(left) == 0, fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	})
	ft.add("everything deleted -> no PV, no NBD device, empty pool: %v", time.Since(t0).Round(100*time.Millisecond))
}

// apply applies YAML or JSON documents.
func (c *nodeCluster) apply(ctx context.Context, t *testing.T, y string) {
	t.Helper()
	if _, err := c.k.kubectl(ctx, []byte(y), "apply", "--validate=strict", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// pvcSpec is a PersistentVolumeClaim of the chart's StorageClass.
type pvcSpec struct {
	name, size string
	block      bool
	modes      []string // default ReadWriteOnce
	dataSource string   // YAML flow mapping, e.g. {kind: PersistentVolumeClaim, name: x}
}

func (p pvcSpec) yaml() string {
	modes := p.modes
	if len(modes) == 0 {
		modes = []string{"ReadWriteOnce"}
	}
	mode := "Filesystem"
	if p.block {
		mode = "Block"
	}
	y := fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %s, namespace: %s}
spec:
  accessModes: [%s]
  volumeMode: %s
  storageClassName: %s
  resources: {requests: {storage: %s}}
`, p.name, podNS, strings.Join(modes, ", "), mode, nodeSC, p.size)
	if p.dataSource != "" {
		y += "  dataSource: " + p.dataSource + "\n"
	}
	return y
}

// podSpec is a busybox Pod running script with claim at /data (or, for a
// block claim, the device at /dev/xvda).
type podSpec struct {
	name, claim, script string
	block, readOnly     bool
	// restartNever: the Pod ends when script ends (phase Succeeded/Failed)
	restartNever bool
	// securityContext is a YAML flow mapping for the Pod, e.g. {fsGroup: 1234}
	securityContext string
}

func (p podSpec) yaml() string {
	restart := "Always"
	if p.restartNever {
		restart = "Never"
	}
	vol := fmt.Sprintf("volumeMounts: [{name: v, mountPath: /data, readOnly: %v}]", p.readOnly)
	if p.block {
		vol = "volumeDevices: [{name: v, devicePath: /dev/xvda}]"
	}
	sc := "{}"
	if p.securityContext != "" {
		sc = p.securityContext
	}
	script, _ := json.Marshal(p.script)
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app: gorbd-e2e}}
spec:
  restartPolicy: %s
  terminationGracePeriodSeconds: 5
  securityContext: %s
  containers:
  - name: c
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", %s]
    %s
  volumes: [{name: v, persistentVolumeClaim: {claimName: %s, readOnly: %v}}]
`, p.name, podNS, restart, sc, busyboxImage, script, vol, p.claim, p.readOnly)
}

// getPod returns the Pod in podNS.
func (c *nodeCluster) getPod(ctx context.Context, name string) (corev1.Pod, error) {
	var p corev1.Pod
	err := c.k.getJSON(ctx, &p, "pod", name, "-n", podNS)
	return p, err
}

// waitPod waits until the Pod reaches one of phases, failing early when it
// reaches another terminal phase; it returns the Pod.
func (c *nodeCluster) waitPod(ctx context.Context, t *testing.T, name string, d time.Duration, phases ...corev1.PodPhase) corev1.Pod {
	t.Helper()
	var p corev1.Pod
	waitFor(ctx, t, d, fmt.Sprintf("pod %s %v", name, phases), func() (bool, error) {
		var err error
		if p, err = c.getPod(ctx, name); err != nil {
			return false, err
		}
		if slices.Contains(phases, p.Status.Phase) {
			return true, nil
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			logs, _ := c.k.kubectl(ctx, nil, "logs", "-n", podNS, name)
			t.Fatalf("pod %s ended %s: %s; logs:\n%s", name, p.Status.Phase, podState(&p), logs)
		}
		return false, fmt.Errorf("%s; events: %s", podState(&p), c.podEvents(ctx, podNS, name))
	})
	return p
}

// podLogs returns the Pod's log.
func (c *nodeCluster) podLogs(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	out, err := c.k.kubectl(ctx, nil, "logs", "-n", podNS, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// deletePod deletes the Pod and waits until it is gone: the kubelet has
// unpublished (and, for the last user, unstaged) its volumes.
func (c *nodeCluster) deletePod(ctx context.Context, t *testing.T, name string) time.Duration {
	t.Helper()
	t0 := time.Now()
	if _, err := c.k.kubectl(ctx, nil, "delete", "pod", name, "-n", podNS, "--wait=true", "--timeout=3m"); err != nil {
		t.Fatal(err)
	}
	return time.Since(t0)
}

// kexec runs a command in a running Pod's container.
func (c *nodeCluster) kexec(ctx context.Context, pod string, cmd ...string) (string, error) {
	out, err := c.k.kubectl(ctx, nil, append([]string{"exec", "-n", podNS, pod, "--"}, cmd...)...)
	return string(out), err
}

// nbdDevices lists the guest's connected NBD devices (those with a pid).
func (c *nodeCluster) nbdDevices(ctx context.Context, t *testing.T) []string {
	t.Helper()
	out, err := c.node.exec(ctx, `for d in /sys/block/nbd*; do [ -e "$d/pid" ] && echo "${d##*/}"; done; true`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(out)
}

// waitNBDCount waits until the node has n connected NBD devices: the
// kubelet unstages a volume after the Pod object is gone.
func (c *nodeCluster) waitNBDCount(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	waitFor(ctx, t, 3*time.Minute, fmt.Sprintf("%d NBD devices on the node", n), func() (bool, error) {
		devs := c.nbdDevices(ctx, t)
		return len(devs) == n, fmt.Errorf("devices %v", devs)
	})
}

// flowWriteDeleteRead: a Pod writes, is deleted (unpublish + unstage), a
// new Pod reads the same bytes.
func (c *nodeCluster) flowWriteDeleteRead(ctx context.Context, t *testing.T, ft *flowTimes) {
	before := c.nbdDevices(ctx, t)
	t0 := time.Now()
	c.apply(ctx, t, pvcSpec{name: "data", size: "1Gi"}.yaml()+"---\n"+podSpec{name: "writer", claim: "data", restartNever: true,
		script: "set -e; grep ' /data ' /proc/mounts; dd if=/dev/urandom of=/data/blob bs=1M count=4; md5sum /data/blob > /data/blob.md5; sync; cat /data/blob.md5"}.yaml())
	c.waitPod(ctx, t, "writer", podStartTimeout, corev1.PodSucceeded)
	wrote := c.podLogs(ctx, t, "writer")
	ft.add("write pod: PVC created -> Pod Succeeded (4 MiB written): %v", time.Since(t0).Round(100*time.Millisecond))
	t0 = time.Now()
	if !strings.Contains(wrote, " /data ext4 rw") {
		t.Errorf("writer's /data is not a rw ext4 mount: %s", wrote)
	}
	d := c.deletePod(ctx, t, "writer")
	c.waitNBDCount(ctx, t, len(before))
	ft.add("write pod deleted -> gone (unpublish) %v, -> NBD device detached (unstage) %v", d.Round(100*time.Millisecond),
		time.Since(t0).Round(100*time.Millisecond))
	t0 = time.Now()
	c.apply(ctx, t, podSpec{name: "reader", claim: "data", restartNever: true,
		script: "set -e; cd /data; md5sum -c blob.md5"}.yaml())
	c.waitPod(ctx, t, "reader", podStartTimeout, corev1.PodSucceeded)
	ft.add("read pod: created -> Succeeded (md5 verified): %v", time.Since(t0).Round(100*time.Millisecond))
	t.Logf("writer: %s; reader: %s", strings.TrimSpace(wrote), strings.TrimSpace(c.podLogs(ctx, t, "reader")))
	c.deletePod(ctx, t, "reader")
}

// flowRawBlock: a raw block claim; a Pod writes at an offset of the device,
// a second Pod reads the same bytes back.
func (c *nodeCluster) flowRawBlock(ctx context.Context, t *testing.T, ft *flowTimes) {
	t0 := time.Now()
	c.apply(ctx, t, pvcSpec{name: "raw", size: "1Gi", block: true}.yaml()+"---\n"+podSpec{name: "raw-writer", claim: "raw", block: true, restartNever: true,
		script: "set -e; test -b /dev/xvda; dd if=/dev/urandom of=/tmp/x bs=1M count=4 2>/dev/null; dd if=/tmp/x of=/dev/xvda bs=1M seek=3 conv=fsync 2>/dev/null; md5sum < /tmp/x"}.yaml())
	c.waitPod(ctx, t, "raw-writer", podStartTimeout, corev1.PodSucceeded)
	ft.add("raw block: PVC created -> writer Pod Succeeded: %v", time.Since(t0).Round(100*time.Millisecond))
	want := lastField(c.podLogs(ctx, t, "raw-writer"), 0)
	c.deletePod(ctx, t, "raw-writer")
	c.apply(ctx, t, podSpec{name: "raw-reader", claim: "raw", block: true, restartNever: true,
		script: "set -e; dd if=/dev/xvda bs=1M skip=3 count=4 2>/dev/null | md5sum"}.yaml())
	c.waitPod(ctx, t, "raw-reader", podStartTimeout, corev1.PodSucceeded)
	got := lastField(c.podLogs(ctx, t, "raw-reader"), 0)
	if want == "" || got != want {
		t.Fatalf("raw block: wrote md5 %q at 3 MiB, read back %q", want, got)
	}
	t.Logf("raw block: 4 MiB at offset 3 MiB read back, md5 %s", got)
	c.deletePod(ctx, t, "raw-reader")
}

// lastField returns field i of the output's last non-empty line.
func lastField(out string, i int) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if i < len(f) {
		return f[i]
	}
	return ""
}

// waitSnapshot waits until the VolumeSnapshot is readyToUse.
func (c *nodeCluster) waitSnapshot(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	waitFor(ctx, t, 3*time.Minute, "VolumeSnapshot "+name+" readyToUse", func() (bool, error) {
		var vs volumeSnapshot
		if err := c.k.getJSON(ctx, &vs, "volumesnapshot", name, "-n", podNS); err != nil {
			return false, err
		}
		if vs.Status == nil || vs.Status.ReadyToUse == nil || !*vs.Status.ReadyToUse {
			b, _ := json.Marshal(vs.Status)
			return false, fmt.Errorf("status %s", b)
		}
		return true, nil
	})
}

// waitClaimBound waits until the PVC is Bound.
func (c *nodeCluster) waitClaimBound(ctx context.Context, t *testing.T, name string) corev1.PersistentVolumeClaim {
	t.Helper()
	var pvc corev1.PersistentVolumeClaim
	waitFor(ctx, t, 3*time.Minute, "PVC "+name+" Bound", func() (bool, error) {
		if err := c.k.getJSON(ctx, &pvc, "pvc", name, "-n", podNS); err != nil {
			return false, err
		}
		return pvc.Status.Phase == corev1.ClaimBound, fmt.Errorf("phase %q", pvc.Status.Phase)
	})
	return pvc
}

// flowSnapshotRestore: a snapshot of "data" (written by WriteDeleteRead),
// restored into a new claim that a Pod reads; a PVC-to-PVC clone of "data"
// read the same way; and a ReadOnlyMany claim from the snapshot mounted
// read-only by two Pods at once.
func (c *nodeCluster) flowSnapshotRestore(ctx context.Context, t *testing.T, ft *flowTimes) {
	t0 := time.Now()
	c.apply(ctx, t, fmt.Sprintf(`apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: snap, namespace: %s}
spec: {volumeSnapshotClassName: %s, source: {persistentVolumeClaimName: data}}
`, podNS, nodeSnapClass))
	c.waitSnapshot(ctx, t, "snap")
	ft.add("snapshot: created -> readyToUse: %v", time.Since(t0).Round(100*time.Millisecond))

	verify := "set -e; cd /data; md5sum -c blob.md5"
	t0 = time.Now()
	c.apply(ctx, t, pvcSpec{name: "restored", size: "1Gi", dataSource: "{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}"}.yaml())
	c.waitClaimBound(ctx, t, "restored")
	ft.add("restore: PVC from snapshot created -> Bound: %v", time.Since(t0).Round(100*time.Millisecond))
	c.apply(ctx, t, podSpec{name: "restore-reader", claim: "restored", restartNever: true, script: verify}.yaml())
	c.waitPod(ctx, t, "restore-reader", podStartTimeout, corev1.PodSucceeded)
	ft.add("restore: PVC created -> reader Pod Succeeded (md5 verified): %v", time.Since(t0).Round(100*time.Millisecond))
	c.deletePod(ctx, t, "restore-reader")

	t0 = time.Now()
	c.apply(ctx, t, pvcSpec{name: "cloned", size: "1Gi", dataSource: "{kind: PersistentVolumeClaim, name: data}"}.yaml())
	c.waitClaimBound(ctx, t, "cloned")
	ft.add("clone: PVC from PVC created -> Bound: %v", time.Since(t0).Round(100*time.Millisecond))
	c.apply(ctx, t, podSpec{name: "clone-reader", claim: "cloned", restartNever: true, script: verify + "; echo changed > /data/only-in-clone"}.yaml())
	c.waitPod(ctx, t, "clone-reader", podStartTimeout, corev1.PodSucceeded)
	c.deletePod(ctx, t, "clone-reader")

	// ReadOnlyMany from the snapshot: two readers at once, writes refused.
	t0 = time.Now()
	c.apply(ctx, t, pvcSpec{name: "rox", size: "1Gi", modes: []string{"ReadOnlyMany"},
		dataSource: "{apiGroup: snapshot.storage.k8s.io, kind: VolumeSnapshot, name: snap}"}.yaml())
	rox := func(name string) string {
		return podSpec{name: name, claim: "rox", readOnly: true, script: verify +
			"; grep ' /data ' /proc/mounts; if touch /data/x 2>/tmp/err; then echo WROTE; else cat /tmp/err; fi; test -e /data/only-in-clone && echo CLONE-LEAKED; sleep 3600"}.yaml()
	}
	c.apply(ctx, t, rox("rox-a")+"---\n"+rox("rox-b"))
	for _, p := range []string{"rox-a", "rox-b"} {
		c.waitPod(ctx, t, p, podStartTimeout, corev1.PodRunning)
	}
	var logs string
	waitFor(ctx, t, time.Minute, "both ReadOnlyMany readers report", func() (bool, error) {
		logs = ""
		for _, p := range []string{"rox-a", "rox-b"} {
			out, err := c.k.kubectl(ctx, nil, "logs", "-n", podNS, p)
			if err != nil {
				return false, err
			}
			// the write attempt's outcome is the last line the reader prints
			if !strings.Contains(string(out), "Read-only file system") && !strings.Contains(string(out), "WROTE") {
				return false, fmt.Errorf("%s: %q", p, out)
			}
			logs += p + ": " + string(out)
		}
		return true, nil
	})
	ft.add("ReadOnlyMany: PVC from snapshot created -> 2 reader Pods verified: %v", time.Since(t0).Round(100*time.Millisecond))
	for _, bad := range []string{"WROTE", "CLONE-LEAKED", "FAILED"} {
		if strings.Contains(logs, bad) {
			t.Errorf("ReadOnlyMany readers: %s\n%s", bad, logs)
		}
	}
	if strings.Count(logs, " ro,") < 2 || strings.Count(logs, "Read-only file system") < 2 {
		t.Errorf("ReadOnlyMany readers: want two ro mounts refusing writes:\n%s", logs)
	}
	t.Logf("ReadOnlyMany readers:\n%s", logs)
	for _, p := range []string{"rox-a", "rox-b"} {
		c.deletePod(ctx, t, p)
	}
}

// dfKiB returns the size of /data in KiB as df in the Pod reports it.
func (c *nodeCluster) dfKiB(ctx context.Context, pod string) (int64, error) {
	out, err := c.kexec(ctx, pod, "df", "-k", "/data")
	if err != nil {
		return 0, err
	}
	var size int64
	if _, err := fmt.Sscan(lastField(out, 1), &size); err != nil {
		return 0, fmt.Errorf("df output %q: %w", out, err)
	}
	return size, nil
}

// flowExpand: the claim of a running Pod grows from 1Gi to 2Gi; the Pod's
// df sees it without a restart.
func (c *nodeCluster) flowExpand(ctx context.Context, t *testing.T, ft *flowTimes) {
	c.apply(ctx, t, pvcSpec{name: "grow", size: "1Gi"}.yaml()+"---\n"+podSpec{name: "grower", claim: "grow",
		script: "echo hello > /data/f; sync; sleep 3600"}.yaml())
	c.waitPod(ctx, t, "grower", podStartTimeout, corev1.PodRunning)
	// One node, attach required: the claim in use has its VolumeAttachment.
	pvs := c.claimVolumes(ctx, t, []string{"grow"})
	c.checkAttached(ctx, t, pvs)
	before, err := c.dfKiB(ctx, "grower")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := c.k.kubectl(ctx, nil, "patch", "pvc", "grow", "-n", podNS, "-p", `{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}`); err != nil {
		t.Fatal(err)
	}
	var after int64
	waitFor(ctx, t, podStartTimeout, "df in the running Pod to show the grown filesystem", func() (bool, error) {
		var err error
		if after, err = c.dfKiB(ctx, "grower"); err != nil {
			return false, err
		}
		if after < 3*1024*1024/2 { // ext4 of 2 GiB shows ~1.9 GiB
			var pvc corev1.PersistentVolumeClaim
			_ = c.k.getJSON(ctx, &pvc, "pvc", "grow", "-n", podNS)
			return false, fmt.Errorf("df %d KiB; PVC conditions %v", after, pvc.Status.Conditions)
		}
		return true, nil
	})
	ft.add("expansion: PVC 1Gi -> 2Gi patched -> visible in the running Pod's df: %v", time.Since(t0).Round(100*time.Millisecond))
	waitFor(ctx, t, time.Minute, "PVC grow status capacity 2Gi", func() (bool, error) {
		var pvc corev1.PersistentVolumeClaim
		if err := c.k.getJSON(ctx, &pvc, "pvc", "grow", "-n", podNS); err != nil {
			return false, err
		}
		q := pvc.Status.Capacity[corev1.ResourceStorage]
		return q.Value() == 2*gib, fmt.Errorf("capacity %s, conditions %v", q.String(), pvc.Status.Conditions)
	})
	if out, err := c.kexec(ctx, "grower", "cat", "/data/f"); err != nil || strings.TrimSpace(out) != "hello" {
		t.Errorf("after expansion /data/f = %q, %v", out, err)
	}
	t.Logf("df of /data: %d KiB -> %d KiB", before, after)
	t0 = time.Now()
	c.deletePod(ctx, t, "grower")
	c.checkDetached(ctx, t, pvs)
	ft.add("expansion Pod deleted -> its VolumeAttachment gone: %v", time.Since(t0).Round(100*time.Millisecond))
}

// flowFSGroup: a Pod with runAsUser/fsGroup gets the volume's files in its
// group (CSIDriver fsGroupPolicy File) and can write as a non-root user.
func (c *nodeCluster) flowFSGroup(ctx context.Context, t *testing.T, ft *flowTimes) {
	t0 := time.Now()
	c.apply(ctx, t, podSpec{name: "fsgroup", claim: "data", restartNever: true,
		securityContext: "{runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000}",
		script:          "set -e; id; stat -c 'dir %g %A' /data; stat -c 'blob %g' /data/blob; echo x > /data/by-user; stat -c 'new %u %g' /data/by-user"}.yaml())
	c.waitPod(ctx, t, "fsgroup", podStartTimeout, corev1.PodSucceeded)
	out := c.podLogs(ctx, t, "fsgroup")
	for _, want := range []string{"dir 2000 drwxrwsr", "blob 2000", "new 1000 2000"} {
		if !strings.Contains(out, want) {
			t.Errorf("fsGroup 2000 pod: want %q in:\n%s", want, out)
		}
	}
	ft.add("fsGroup: Pod created -> Succeeded (ownership applied): %v", time.Since(t0).Round(100*time.Millisecond))
	t.Logf("fsGroup pod:\n%s", out)
	c.deletePod(ctx, t, "fsgroup")
}

// flowStartup: n claims with a Pod each, at most par of them starting at
// a time (a new pair is created when one runs); per Pod the time from its
// claim's creation to Running, as p50/p95/max; then all deleted.
func (c *nodeCluster) flowStartup(ctx context.Context, t *testing.T, ft *flowTimes, n, par int) {
	name := func(i int) string { return fmt.Sprintf("lat-%03d", i) }
	// The earlier flows' Pods are gone; their volumes unstage a moment later.
	c.waitNBDCount(ctx, t, 0)
	before := 0
	idle := c.pluginUsage(ctx, t)
	created := map[string]time.Time{}
	running := map[string]time.Duration{}
	t0 := time.Now()
	next := 0
	waitFor(ctx, t, time.Duration(n)*time.Minute, fmt.Sprintf("%d Pods Running, %d at a time", n, par), func() (bool, error) {
		var batch []string
		for next < n && next-len(running) < par {
			batch = append(batch, pvcSpec{name: name(next), size: "1Gi"}.yaml(), podSpec{name: name(next), claim: name(next),
				script: "echo up > /data/up; sleep 3600"}.yaml())
			created[name(next)] = time.Now()
			next++
		}
		if len(batch) > 0 {
			c.apply(ctx, t, strings.Join(batch, "---\n"))
		}
		var pl corev1.PodList
		if err := c.k.getJSON(ctx, &pl, "pods", "-n", podNS, "-l", "app=gorbd-e2e"); err != nil {
			return false, err
		}
		for _, p := range pl.Items {
			if _, ok := created[p.Name]; !ok {
				continue
			}
			if _, ok := running[p.Name]; !ok && p.Status.Phase == corev1.PodRunning {
				running[p.Name] = time.Since(created[p.Name])
			}
			if p.Status.Phase == corev1.PodFailed {
				t.Fatalf("pod %s failed: %s", p.Name, podState(&p))
			}
		}
		return len(running) == n, fmt.Errorf("%d of %d Running", len(running), n)
	})
	all := time.Since(t0)
	var ds []time.Duration
	for _, d := range running {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1)+0.5)].Round(100 * time.Millisecond) }
	ft.add("PVC created -> Pod Running, %d PVC+Pod pairs, %d at a time: p50 %v, p95 %v, max %v; all Running after %v",
		n, par, pct(0.5), pct(0.95), pct(1), all.Round(100*time.Millisecond))
	ft.add("node plugin with %d volumes staged: %s (idle before: %s)", n, c.pluginUsage(ctx, t), idle)
	if got := len(c.nbdDevices(ctx, t)); got != before+n {
		t.Errorf("%d NBD devices with %d volumes staged, want %d", got, n, before+n)
	}
	var names []string
	for i := range n {
		names = append(names, name(i))
	}
	// One node, attach required: a VolumeAttachment per attached claim.
	pvs := c.claimVolumes(ctx, t, names)
	c.checkAttached(ctx, t, pvs)
	t0 = time.Now()
	if _, err := c.k.kubectl(ctx, nil, "delete", "pods", "-n", podNS, "-l", "app=gorbd-e2e", "--wait=true", "--timeout=20m"); err != nil {
		t.Fatal(err)
	}
	ft.add("%d Pods deleted -> all gone (unpublish): %v", n, time.Since(t0).Round(100*time.Millisecond))
	c.waitNBDCount(ctx, t, before)
	ft.add("%d Pods deleted -> every NBD device detached (unstage): %v", n, time.Since(t0).Round(100*time.Millisecond))
	c.checkDetached(ctx, t, pvs)
	ft.add("%d Pods deleted -> every VolumeAttachment gone (ControllerUnpublish): %v", n, time.Since(t0).Round(100*time.Millisecond))
	if _, err := c.k.kubectl(ctx, nil, append([]string{"delete", "pvc", "-n", podNS, "--wait=false"}, names...)...); err != nil {
		t.Fatal(err)
	}
}

// pluginUsage is the node plugin process's resident memory and thread
// count in the guest.
func (c *nodeCluster) pluginUsage(ctx context.Context, t *testing.T) string {
	t.Helper()
	out, err := c.node.exec(ctx, `pid=$(pidof csi-gorbd) || exit 1; awk '/^VmRSS|^Threads/{printf "%s %s %s  ", $1, $2, $3}' /proc/$pid/status`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestPodScale is the scale run behind bench/k8s-pods.sh: GORBD_E2E_SCALE
// claims with a Pod each, created at once, on the node VM; time to all
// Running (p50/p95), the node plugin's memory and threads, deletion time.
func TestPodScale(t *testing.T) {
	if os.Getenv("GORBD_E2E_SCALE") == "" {
		t.Skip("GORBD_E2E_SCALE unset (bench/k8s-pods.sh sets it)")
	}
	n := envInt(t, "GORBD_E2E_SCALE", 0)
	par := envInt(t, "GORBD_E2E_PODS_PARALLEL", n)
	c := sharedCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	if _, err := c.k.kubectl(ctx, nil, "create", "namespace", podNS); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	ft := &flowTimes{}
	defer func() {
		if t.Failed() {
			c.dump(t)
		}
		for _, l := range ft.lines {
			fmt.Printf("k8s-scale: %s\n", l)
		}
	}()
	c.flowStartup(ctx, t, ft, n, par)
	c.flowDeleteAll(ctx, t, ft)
}

// envInt reads a positive count from the environment, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive count", name, s)
	}
	return n
}

// attachments maps each PersistentVolume that has a VolumeAttachment of
// the driver to it.
func (c *nodeCluster) attachments(ctx context.Context) (map[string]storagev1.VolumeAttachment, error) {
	var l storagev1.VolumeAttachmentList
	if err := c.k.getJSON(ctx, &l, "volumeattachments"); err != nil {
		return nil, err
	}
	m := map[string]storagev1.VolumeAttachment{}
	for _, va := range l.Items {
		if va.Spec.Attacher == driverName && va.Spec.Source.PersistentVolumeName != nil {
			m[*va.Spec.Source.PersistentVolumeName] = va
		}
	}
	return m, nil
}

// claimVolumes returns the PersistentVolume bound to each claim.
func (c *nodeCluster) claimVolumes(ctx context.Context, t *testing.T, claims []string) []string {
	t.Helper()
	var pvs []string
	for _, cl := range claims {
		var pvc corev1.PersistentVolumeClaim
		if err := c.k.getJSON(ctx, &pvc, "pvc", cl, "-n", podNS); err != nil {
			t.Fatal(err)
		}
		if pvc.Spec.VolumeName == "" {
			t.Fatalf("claim %s is not bound", cl)
		}
		pvs = append(pvs, pvc.Spec.VolumeName)
	}
	return pvs
}

// checkAttached: each PV has exactly one VolumeAttachment of the driver,
// to the node, attached (the external-attacher ran ControllerPublish).
func (c *nodeCluster) checkAttached(ctx context.Context, t *testing.T, pvs []string) {
	t.Helper()
	waitFor(ctx, t, 2*time.Minute, fmt.Sprintf("%d VolumeAttachments attached to %s", len(pvs), nodeName), func() (bool, error) {
		m, err := c.attachments(ctx)
		if err != nil {
			return false, err
		}
		for _, pv := range pvs {
			va, ok := m[pv]
			if !ok {
				return false, fmt.Errorf("no VolumeAttachment for %s", pv)
			}
			if va.Spec.NodeName != nodeName || !va.Status.Attached {
				return false, fmt.Errorf("VolumeAttachment %s: node %q attached %v", va.Name, va.Spec.NodeName, va.Status.Attached)
			}
		}
		return true, nil
	})
}

// checkDetached waits until none of the PVs has a VolumeAttachment.
func (c *nodeCluster) checkDetached(ctx context.Context, t *testing.T, pvs []string) {
	t.Helper()
	waitFor(ctx, t, 5*time.Minute, fmt.Sprintf("VolumeAttachments of %d volumes gone", len(pvs)), func() (bool, error) {
		m, err := c.attachments(ctx)
		if err != nil {
			return false, err
		}
		var left []string
		for _, pv := range pvs {
			if va, ok := m[pv]; ok {
				left = append(left, va.Name)
			}
		}
		return len(left) == 0, fmt.Errorf("still there: %s", strings.Join(left, ", "))
	})
}
