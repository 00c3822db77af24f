package kubenodes

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const drv = "rbd.csi-gorbd.io"

func csinode(name string, drivers ...string) string {
	var ds []string
	for i := 0; i+1 < len(drivers); i += 2 {
		ds = append(ds, fmt.Sprintf(`{"name":%q,"nodeID":%q}`, drivers[i], drivers[i+1]))
	}
	return fmt.Sprintf(`{"kind":"CSINode","metadata":{"name":%q},"spec":{"drivers":[%s]}}`, name, strings.Join(ds, ","))
}

// TestNodeExists runs the directory against a TLS server that answers
// like the API server: CSINode by name, the list, 404 and 403, with the
// token checked on every request (and rotated in the middle).
func TestNodeExists(t *testing.T) {
	nodes := map[string]string{
		"n1": csinode("n1", drv, "n1"),
		"n2": csinode("n2", "other.driver", "n2", drv, "custom-id"),
		"n3": csinode("n3", "other.driver", "n3"),
	}
	var token atomic.Value
	token.Store("t1")
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+token.Load().(string) {
			http.Error(w, `{"kind":"Status","reason":"Forbidden"}`, http.StatusForbidden)
			return
		}
		const base = "/apis/storage.k8s.io/v1/csinodes"
		switch {
		case r.URL.Path == base:
			var items []string
			for _, n := range nodes {
				items = append(items, n)
			}
			fmt.Fprintf(w, `{"kind":"CSINodeList","items":[%s]}`, strings.Join(items, ","))
		case strings.HasPrefix(r.URL.Path, base+"/"):
			n, ok := nodes[strings.TrimPrefix(r.URL.Path, base+"/")]
			if !ok {
				http.Error(w, `{"kind":"Status","reason":"NotFound"}`, http.StatusNotFound)
				return
			}
			fmt.Fprint(w, n)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	writeToken := func(s string) {
		token.Store(s)
		if err := os.WriteFile(filepath.Join(dir, "token"), []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("t1")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	t.Setenv("KUBERNETES_SERVICE_HOST", host)
	t.Setenv("KUBERNETES_SERVICE_PORT", port)
	d, err := New(drv, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"n1", true},        // the CSINode of that name lists it
		{"custom-id", true}, // another name: found in the list
		{"n3", false},       // a node without this driver
		{"n2", false},       // its CSINode lists the driver under another id
		{"nowhere", false},  // no such CSINode
	} {
		got, err := d.NodeExists(ctx, tc.id)
		if err != nil || got != tc.want {
			t.Errorf("NodeExists(%q) = %v, %v; want %v", tc.id, got, err, tc.want)
		}
	}
	writeToken("t2") // rotated by the kubelet: read again
	if ok, err := d.NodeExists(ctx, "n1"); !ok || err != nil {
		t.Errorf("after the token rotated: %v %v", ok, err)
	}
	token.Store("t3") // the server no longer accepts the file's token
	if _, err := d.NodeExists(ctx, "n1"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("forbidden: %v, want an error naming 403", err)
	}
	if requests.Load() == 0 {
		t.Fatal("no request reached the server")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := New(drv, dir); err == nil {
		t.Error("New outside a pod succeeded")
	}
}

// TestSecretAndConfigMap: the KMS's reads, as the API server answers them
// (Secret data base64 in JSON, ConfigMap data strings, 404).
func TestSecretAndConfigMap(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/namespaces/ns1/secrets/s1":
			fmt.Fprint(w, `{"kind":"Secret","data":{"encryptionPassphrase":"c2VjcmV0IHBhc3M="}}`)
		case "/api/v1/namespaces/kube-system/configmaps/csi-kms-connection-details":
			fmt.Fprint(w, `{"kind":"ConfigMap","data":{"m":"{\"encryptionKMSType\":\"metadata\"}"}}`)
		default:
			http.Error(w, `{"kind":"Status","reason":"NotFound"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "token"), []byte("t"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	t.Setenv("KUBERNETES_SERVICE_HOST", host)
	t.Setenv("KUBERNETES_SERVICE_PORT", port)
	d, err := New(drv, dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := d.Secret(ctx, "ns1", "s1")
	if err != nil || string(s["encryptionPassphrase"]) != "secret pass" {
		t.Fatalf("Secret: %q %v", s, err)
	}
	if _, err := d.Secret(ctx, "ns1", "nope"); err == nil || !strings.Contains(err.Error(), "ns1/nope does not exist") {
		t.Fatalf("missing Secret: %v", err)
	}
	c, err := d.ConfigMap(ctx, "kube-system", "csi-kms-connection-details")
	if err != nil || c["m"] != `{"encryptionKMSType":"metadata"}` {
		t.Fatalf("ConfigMap: %q %v", c, err)
	}
}
