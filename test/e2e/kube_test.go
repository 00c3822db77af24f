package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kube is a control plane on loopback and a kubectl bound to it.
type kube struct {
	bins, dir  string
	kubeconfig string // admin (system:masters)
	apiURL     string
	apiPort    int
	ps         *procs
	// nodeToken authenticates the kubelet of opts.nodeName (group system:nodes).
	nodeToken string
}

// kubeOpts selects what startKube runs besides etcd and kube-apiserver.
type kubeOpts struct {
	// nodeName, when set, prepares for a real kubelet of that name: the Node
	// authorizer and a token for system:node:<nodeName>, the apiserver
	// reaching kubelets by their Hostname address (the node VM's kubelet is
	// reachable only through a qemu port forward on the host's loopback,
	// and its hostname is "localhost"), kube-scheduler, and every default
	// controller of kube-controller-manager except the Deployment
	// controller (the chart's controller Deployment is run on the host by
	// the suite, see startController) instead of the PV/PVC ones alone.
	nodeName string
}

// kubectl runs kubectl with the admin kubeconfig.
func (k *kube) kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return run(ctx, stdin, nil, filepath.Join(k.bins, "kubectl"), append([]string{"--kubeconfig", k.kubeconfig}, args...)...)
}

// getJSON decodes `kubectl get ... -o json` into v.
func (k *kube) getJSON(ctx context.Context, v any, args ...string) error {
	out, err := k.kubectl(ctx, nil, append(append([]string{"get"}, args...), "-o", "json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

// writeKubeconfig writes a kubeconfig for the loopback apiserver with token.
func writeKubeconfig(path, server, token string) error {
	return os.WriteFile(path, kubeconfigYAML(server, token), 0o600)
}

// startKube starts etcd, kube-apiserver and kube-controller-manager (only the
// PV/PVC controllers the flows need: binder, expander, protection) and waits
// until each is healthy.
func startKube(ctx context.Context, t *testing.T, bins, dir string, ps *procs, opts kubeOpts) *kube {
	t.Helper()
	k := &kube{bins: bins, dir: dir, kubeconfig: filepath.Join(dir, "admin.kubeconfig"), ps: ps}

	// ServiceAccount signing key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saKey := filepath.Join(dir, "sa.key")
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(saKey, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := "e2e-admin-" + randSuffix()
	tokens := tok + ",admin,admin-uid,system:masters\n"
	authz := "RBAC"
	var extraAPI []string
	if opts.nodeName != "" {
		k.nodeToken = "e2e-node-" + randSuffix() + randSuffix()
		tokens += k.nodeToken + ",system:node:" + opts.nodeName + ",node-uid,system:nodes\n"
		authz = "Node,RBAC"
		extraAPI = append(extraAPI, "--kubelet-preferred-address-types", "Hostname,InternalIP")
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}

	ec, ep, ap, cp := freePort(t), freePort(t), freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ec)
	etcd := ps.start(t, "etcd", filepath.Join(bins, "etcd"), "--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--unsafe-no-fsync", "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", ep),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", ep),
		"--initial-cluster", fmt.Sprintf("e2e=http://127.0.0.1:%d", ep))
	waitFor(ctx, t, 30*time.Second, "etcd /health", func() (bool, error) {
		if err := etcd.alive(); err != nil {
			t.Fatal(err)
		}
		return httpOK(ctx, etcdURL+"/health")
	})

	k.apiURL = fmt.Sprintf("https://127.0.0.1:%d", ap)
	k.apiPort = ap
	api := ps.start(t, "kube-apiserver", filepath.Join(bins, "kube-apiserver"), append([]string{"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		// the default reconciler refuses a loopback advertise address
		"--endpoint-reconciler-type", "none",
		"--secure-port", fmt.Sprint(ap), "--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"), "--authorization-mode", authz,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		// as every kubeadm cluster: the node plugin is privileged
		"--allow-privileged=true"}, extraAPI...)...)
	if err := writeKubeconfig(k.kubeconfig, k.apiURL, tok); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, 90*time.Second, "kube-apiserver /readyz", func() (bool, error) {
		if err := api.alive(); err != nil {
			t.Fatal(err)
		}
		_, err := k.kubectl(ctx, nil, "get", "--raw", "/readyz")
		return err == nil, err
	})

	controllers := strings.Join([]string{"persistentvolume-binder-controller", "persistentvolume-expander-controller",
		"persistentvolume-protection-controller", "persistentvolumeclaim-protection-controller",
		"serviceaccount-controller", "serviceaccount-token-controller", "namespace-controller",
		"garbage-collector-controller"}, ",")
	var extraKCM []string
	if opts.nodeName != "" {
		// The ClusterTrustBundle publisher wants a CA; the apiserver's
		// self-signed serving certificate (--root-ca-file) is none.
		controllers = "*,-deployment-controller,-kube-apiserver-serving-clustertrustbundle-publisher-controller"
		// kube-root-ca.crt in every namespace: the kubelet waits for it to
		// mount a Pod's service account token.
		extraKCM = append(extraKCM, "--root-ca-file", filepath.Join(dir, "apiserver-certs", "apiserver.crt"))
	}
	kcm := ps.start(t, "kube-controller-manager", filepath.Join(bins, "kube-controller-manager"), append([]string{
		"--kubeconfig", k.kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(cp), "--cert-dir", filepath.Join(dir, "kcm-certs"),
		"--authentication-skip-lookup", "--authorization-always-allow-paths", "/healthz",
		"--service-account-private-key-file", saKey,
		// otherwise it creates /usr/libexec/kubernetes/... on the host
		"--flex-volume-plugin-dir", filepath.Join(dir, "flex"),
		"--controllers", controllers}, extraKCM...)...)
	waitFor(ctx, t, 60*time.Second, "kube-controller-manager /healthz", func() (bool, error) {
		if err := kcm.alive(); err != nil {
			t.Fatal(err)
		}
		return httpOK(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", cp))
	})
	if opts.nodeName != "" {
		sp := freePort(t)
		sched := ps.start(t, "kube-scheduler", filepath.Join(bins, "kube-scheduler"),
			"--kubeconfig", k.kubeconfig, "--leader-elect=false",
			"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(sp),
			"--authentication-skip-lookup", "--authorization-always-allow-paths", "/healthz")
		waitFor(ctx, t, 60*time.Second, "kube-scheduler /healthz", func() (bool, error) {
			if err := sched.alive(); err != nil {
				t.Fatal(err)
			}
			return httpOK(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", sp))
		})
	}
	return k
}

func httpOK(ctx context.Context, url string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return true, nil
}

// installSnapshotCRDs applies the 6 VolumeSnapshot CRDs (snapshot-controller
// v8 also lists the group snapshot ones) and waits until they are served.
func (k *kube) installSnapshotCRDs(ctx context.Context, t *testing.T) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k.bins, "crd", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in %s/crd: %v", k.bins, err)
	}
	args := []string{"apply", "--server-side"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	if _, err := k.kubectl(ctx, nil, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := k.kubectl(ctx, nil, "wait", "--for", "condition=Established", "crd", "--all", "--timeout", "60s"); err != nil {
		t.Fatal(err)
	}
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the
// given ServiceAccount (a TokenRequest token), so a sidecar runs with exactly
// the RBAC the chart grants it.
func (k *kube) serviceAccountKubeconfig(ctx context.Context, t *testing.T, ns, sa string) string {
	t.Helper()
	out, err := k.kubectl(ctx, nil, "create", "token", sa, "-n", ns, "--duration", "2h")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(k.dir, "sa-"+sa+".kubeconfig")
	if err := writeKubeconfig(path, k.apiURL, strings.TrimSpace(string(out))); err != nil {
		t.Fatal(err)
	}
	return path
}
