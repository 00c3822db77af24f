package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// nodeName is the kubelet's name. The apiserver reaches kubelets by their
// Hostname address; the node VM's kubelet is reachable only through a qemu
// port forward on the host's loopback, so its hostname is "localhost".
const nodeName = "localhost"

// guestAgentPort is where test/vm/node/agent serves /exec in the guest.
const guestAgentPort = 7000

// nodeVM is the Kubernetes node: a qemu VM (TCG unless real KVM is usable)
// booting the disk, kernel and initrd test/vm/node/build.sh made, with its
// per-boot configuration on a second, read-only disk.
type nodeVM struct {
	imageDir    string // build.sh's output
	kubeletPort int    // same port on the host (hostfwd) and in the guest
	agentURL    string
	qemu        *proc
	booted      time.Time
}

// nodeImageDir returns GORBD_E2E_NODE (build.sh's output), skipping when it
// is unset and failing when it is incomplete.
func nodeImageDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GORBD_E2E_NODE")
	if dir == "" {
		t.Skip("GORBD_E2E_NODE unset: run GORBD_E2E_NODE=$(bash test/vm/node/build.sh BINS IMAGES) (see README.md)")
	}
	for _, f := range []string{"vmlinuz", "initrd.cpio", "node.img"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("GORBD_E2E_NODE=%s lacks %s (run test/vm/node/build.sh): %v", dir, f, err)
		}
	}
	return dir
}

// nodeConfig is what one boot of the node gets on its config disk.
type nodeConfig struct {
	cephPorts string // mon and OSD ports to forward to the host
	memMiB    int
}

// bootNode writes the config disk and starts qemu. It returns at once; use
// waitReady.
func bootNode(ctx context.Context, t *testing.T, k *kube, ps *procs, dir, imageDir string, cfg nodeConfig) *nodeVM {
	t.Helper()
	n := &nodeVM{imageDir: imageDir, kubeletPort: freePort(t)}
	agentPort := freePort(t)
	n.agentURL = fmt.Sprintf("http://127.0.0.1:%d", agentPort)

	files := map[string][]byte{
		"etc/gorbd-node/env": fmt.Appendf(nil, "NODE_NAME=%s\nCEPH_PORTS=%s\nAGENT_PORT=%d\n",
			nodeName, cfg.cephPorts, guestAgentPort),
		// qemu's user network shows the host's loopback as 10.0.2.2.
		"etc/gorbd-node/kubeconfig":   kubeconfigYAML(fmt.Sprintf("https://10.0.2.2:%d", k.apiPort), k.nodeToken),
		"etc/gorbd-node/kubelet.yaml": kubeletConfig(n.kubeletPort),
	}
	cfgDisk := filepath.Join(dir, "node-config.tar")
	if err := writeTar(cfgDisk, files); err != nil {
		t.Fatal(err)
	}

	mem := cfg.memMiB
	if mem == 0 {
		mem = 3072
	}
	if s := os.Getenv("VM_MEM"); s != "" {
		if v, err := strconv.Atoi(s); err == nil {
			mem = v
		}
	}
	args := append(accelArgs(), "-M", "pc", "-m", strconv.Itoa(mem), "-smp", "2",
		"-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
		"-kernel", filepath.Join(imageDir, "vmlinuz"), "-initrd", filepath.Join(imageDir, "initrd.cpio"),
		"-append", "console=ttyS0 panic=-1 reboot=t quiet loglevel=3",
		// snapshot=on: every boot starts from the built disk, writes go to a
		// temporary overlay qemu deletes.
		"-drive", "file="+filepath.Join(imageDir, "node.img")+",if=virtio,format=raw,snapshot=on",
		"-drive", "file="+cfgDisk+",if=virtio,format=raw,readonly=on",
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d,hostfwd=tcp:127.0.0.1:%d-:%d",
			n.kubeletPort, n.kubeletPort, agentPort, guestAgentPort),
		"-device", "virtio-net-pci,netdev=n0,romfile=")
	n.booted = time.Now()
	n.qemu = ps.start(t, "node-vm", "qemu-system-x86_64", args...)
	return n
}

// accelArgs picks KVM only when it is real VT-x/AMD-V (not kvm_pvm, which
// runs stock kernels slower than TCG), as test/vm/run.sh does.
func accelArgs() []string {
	kvm := false
	switch os.Getenv("VM_ACCEL") {
	case "kvm":
		kvm = true
	case "tcg":
	default:
		_, pvm := os.Stat("/sys/module/kvm_pvm")
		_, intel := os.Stat("/sys/module/kvm_intel")
		_, amd := os.Stat("/sys/module/kvm_amd")
		f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
		if err == nil {
			f.Close()
			kvm = pvm != nil && (intel == nil || amd == nil)
		}
	}
	if kvm {
		return []string{"-accel", "kvm", "-cpu", "host"}
	}
	// -cpu max: crc32c-intel needs SSE4.2
	return []string{"-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"}
}

// kubeconfigYAML is a kubeconfig for server with a bearer token.
func kubeconfigYAML(server, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: u}}]
current-context: e2e
`, server, token)
}

// kubeletConfig is the node's KubeletConfiguration: no systemd in the guest
// (cgroupfs), no swap check, eviction thresholds loose enough for a small
// disk, and no authentication of the apiserver's calls (logs, exec): the
// port is reachable only from the host's loopback.
func kubeletConfig(port int) []byte {
	return fmt.Appendf(nil, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
port: %d
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
nodeStatusUpdateFrequency: 10s
maxPods: 150
`, port)
}

// writeTar writes files (path -> content) as a tar, directories implied.
func writeTar(path string, files map[string][]byte) error {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	for name, data := range files {
		for d := filepath.Dir(name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		mode := int64(0o644)
		if strings.Contains(name, "kubeconfig") {
			mode = 0o600
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o600)
}

// waitReady waits until the guest's init started the kubelet and the Node
// is Ready.
func (n *nodeVM) waitReady(ctx context.Context, t *testing.T, k *kube) {
	t.Helper()
	waitFor(ctx, t, 5*time.Minute, "node VM boot (GORBD-NODE-UP on its console)", func() (bool, error) {
		if err := n.qemu.alive(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(n.qemu.log)
		if err != nil {
			return false, err
		}
		return bytes.Contains(b, []byte("GORBD-NODE-UP")), nil
	})
	t.Logf("node VM: kubelet started %v after qemu", time.Since(n.booted).Round(time.Millisecond))
	waitFor(ctx, t, 5*time.Minute, "Node "+nodeName+" Ready", func() (bool, error) {
		if err := n.qemu.alive(); err != nil {
			t.Fatal(err)
		}
		var node corev1.Node
		if err := k.getJSON(ctx, &node, "node", nodeName); err != nil {
			return false, err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return true, nil
				}
				return false, fmt.Errorf("Ready=%s: %s", c.Status, c.Message)
			}
		}
		return false, errPending
	})
	t.Logf("node VM: Node Ready %v after qemu started", time.Since(n.booted).Round(time.Millisecond))
}

// exec runs a shell script in the guest (as root, outside any container)
// through the guest agent and returns its output; a non-zero exit status is
// an error carrying the output.
func (n *nodeVM) exec(ctx context.Context, script string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.agentURL+"/exec?timeout=120", strings.NewReader(script))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("guest agent: %s: %s", resp.Status, b)
	}
	out := strings.TrimRight(string(b), "\n")
	i := strings.LastIndex(out, "\nexit: ")
	if i < 0 {
		return out, fmt.Errorf("guest agent: reply without exit status: %q", out)
	}
	code, body := strings.TrimSpace(out[i+len("\nexit: "):]), out[:i]
	if code != "0" {
		return body, fmt.Errorf("guest script exited %s: %s", code, body)
	}
	return body, nil
}

// dumpGuest logs the tails of the guest's logs and kernel messages.
func (n *nodeVM) dumpGuest(t *testing.T, lines int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := n.exec(ctx, fmt.Sprintf(`for f in /var/log/gorbd-node/*.log; do echo "---- guest $f"; tail -n %d "$f"; done
echo "---- guest dmesg"; dmesg | tail -n %d`, lines, lines))
	if err != nil {
		t.Logf("guest logs unavailable: %v", err)
	}
	t.Logf("%s", out)
}
