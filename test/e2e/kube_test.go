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
	ps         *procs
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
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: u}}]
current-context: e2e
`, server, token)
	return os.WriteFile(path, []byte(kc), 0o600)
}

// startKube starts etcd, kube-apiserver and kube-controller-manager (only the
// PV/PVC controllers the flows need: binder, expander, protection) and waits
// until each is healthy.
func startKube(ctx context.Context, t *testing.T, bins, dir string, ps *procs) *kube {
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
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tok+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
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
	api := ps.start(t, "kube-apiserver", filepath.Join(bins, "kube-apiserver"), "--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		// the default reconciler refuses a loopback advertise address
		"--endpoint-reconciler-type", "none",
		"--secure-port", fmt.Sprint(ap), "--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.96.0.0/16",
		// as every kubeadm cluster: the node plugin is privileged
		"--allow-privileged=true")
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

	kcm := ps.start(t, "kube-controller-manager", filepath.Join(bins, "kube-controller-manager"),
		"--kubeconfig", k.kubeconfig, "--leader-elect=false",
		"--bind-address", "127.0.0.1", "--secure-port", fmt.Sprint(cp), "--cert-dir", filepath.Join(dir, "kcm-certs"),
		"--authentication-skip-lookup", "--authorization-always-allow-paths", "/healthz",
		"--service-account-private-key-file", saKey,
		// otherwise it creates /usr/libexec/kubernetes/... on the host
		"--flex-volume-plugin-dir", filepath.Join(dir, "flex"),
		"--controllers", strings.Join([]string{"persistentvolume-binder-controller", "persistentvolume-expander-controller",
			"persistentvolume-protection-controller", "persistentvolumeclaim-protection-controller",
			"serviceaccount-controller", "serviceaccount-token-controller", "namespace-controller",
			"garbage-collector-controller"}, ","))
	waitFor(ctx, t, 60*time.Second, "kube-controller-manager /healthz", func() (bool, error) {
		if err := kcm.alive(); err != nil {
			t.Fatal(err)
		}
		return httpOK(ctx, fmt.Sprintf("https://127.0.0.1:%d/healthz", cp))
	})
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
