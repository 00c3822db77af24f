package main

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTopologyFromLabels(t *testing.T) {
	labels := map[string]string{"topology.kubernetes.io/region": "east", "topology.kubernetes.io/zone": "east-1", "rack": "r7", "other": "x"}
	got, err := topologyFromLabels(labels, "topology.kubernetes.io/region, topology.kubernetes.io/zone,rack", "rbd.csi.ceph.com")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"topology.rbd.csi.ceph.com/region": "east", "topology.rbd.csi.ceph.com/zone": "east-1", "topology.rbd.csi.ceph.com/rack": "r7"}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := topologyFromLabels(labels, "rack,missing/label", "d"); err == nil || !strings.Contains(err.Error(), "missing/label") {
		t.Errorf("missing label: %v", err)
	}
	if _, err := topologyFromLabels(labels, "rack,rack", "d"); err == nil {
		t.Error("duplicate label accepted")
	}
	if _, err := topologyFromLabels(labels, "rack", strings.Repeat("d", 60)); err == nil {
		t.Error("over-long prefix accepted")
	}
}

// TestNodeTopologyAPI: the node's labels come from GET /api/v1/nodes/<name>
// with the service account's token, over TLS checked against its CA.
func TestNodeTopologyAPI(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/nodes/n1" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"kind":"Node","metadata":{"name":"n1","labels":{"topology.kubernetes.io/zone":"z9"}}}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	t.Setenv("KUBERNETES_SERVICE_HOST", host)
	t.Setenv("KUBERNETES_SERVICE_PORT", port)
	got, err := nodeTopology(context.Background(), "n1", "topology.kubernetes.io/zone", "rbd.csi.ceph.com", dir)
	if err != nil || got["topology.rbd.csi.ceph.com/zone"] != "z9" {
		t.Errorf("%v %v", got, err)
	}
	if _, err := nodeTopology(context.Background(), "n2", "topology.kubernetes.io/zone", "d", dir); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("refused: %v", err)
	}
}
