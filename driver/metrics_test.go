package driver_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

type attachedN int

func (a attachedN) AttachedVolumes() int { return int(a) }

// serve runs a controller-mode driver with metrics on a unix socket and
// returns a client connection.
func serve(t *testing.T, cs *controllerserver.Server, m *driver.Metrics) *grpc.ClientConn {
	t.Helper()
	d, err := driver.New(driver.Options{Name: "rbd.csi-gorbd.io", Version: "test", Mode: driver.ModeController,
		Controller: cs, Ready: cs.Ready, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "gorbd-metrics-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "csi.sock")
	ln, err := driver.Listen("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		d.Stop()
		<-done
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func wantLine(t *testing.T, body, line string) {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("metrics lack %q", line)
}

// TestMetricsCountCalls: the interceptor counts calls and errors per method
// and code, the attached gauge sums its sources, and the HTTP endpoints
// answer. No cluster is involved: the failing call fails on its input.
func TestMetricsCountCalls(t *testing.T) {
	cs := controllerserver.New(controllerserver.Options{})
	defer cs.Close()
	m := driver.NewMetrics()
	m.AddAttachedSource(attachedN(2))
	m.AddAttachedSource(attachedN(3))
	conn := serve(t, cs, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := csi.NewIdentityClient(conn)
	for i := 0; i < 3; i++ {
		if _, err := id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := csi.NewControllerClient(conn).CreateVolume(ctx, &csi.CreateVolumeRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("CreateVolume without a name: %v", err)
	}
	h := driver.MetricsHandler(m, driver.HealthOptions{Ready: func(context.Context) bool { return false }})
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	wantLine(t, body, `csi_gorbd_grpc_requests_total{code="OK",method="GetPluginInfo"} 3`)
	wantLine(t, body, `csi_gorbd_grpc_requests_total{code="InvalidArgument",method="CreateVolume"} 1`)
	wantLine(t, body, `csi_gorbd_grpc_errors_total{code="InvalidArgument",method="CreateVolume"} 1`)
	wantLine(t, body, `csi_gorbd_grpc_request_duration_seconds_count{method="GetPluginInfo"} 3`)
	wantLine(t, body, `csi_gorbd_grpc_requests_in_flight{method="GetPluginInfo"} 0`)
	wantLine(t, body, `csi_gorbd_attached_volumes 5`)
	if strings.Contains(body, `grpc_errors_total{code="OK"`) {
		t.Error("successful calls counted as errors")
	}
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Ready false: %d", code)
	}
}

// TestMetricsCephSession: after a call against the real cluster the
// controller's session is reported up, Probe is ready, and /readyz is OK;
// the secret never shows in the metrics.
func TestMetricsCephSession(t *testing.T) {
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	if pool == "" {
		pool = "rbd"
	}
	clusterID := "metrics-" + randHex()
	cs := controllerserver.New(controllerserver.Options{Instance: clusterID,
		Clusters: map[string]csiceph.ClusterInfo{clusterID: {ClusterID: clusterID, Monitors: []string{mon}}}})
	defer cs.Close()
	m := driver.NewMetrics()
	m.AddHealthSource(driver.HealthReporterFunc(func(ctx context.Context) []driver.SessionHealth {
		var out []driver.SessionHealth
		for _, s := range cs.SessionHealth(ctx) {
			out = append(out, driver.SessionHealth{Cluster: s.Cluster, User: s.User, Up: s.Up})
		}
		return out
	}))
	conn := serve(t, cs, m)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A snapshot of a volume that does not exist: it dials the cluster
	// and fails with NotFound, leaving nothing behind.
	missing := csiceph.VolumeID{ClusterID: clusterID, PoolID: 1, Image: "metrics-missing-" + randHex()}
	_, err := csi.NewControllerClient(conn).ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId: missing.String(), Secrets: map[string]string{"userID": "admin", "userKey": key},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("ValidateVolumeCapabilities of a missing volume: %v", err)
	}
	pr, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !pr.GetReady().GetValue() {
		t.Errorf("Probe with the cluster up: %v %v", pr, err)
	}
	h := driver.MetricsHandler(m, driver.HealthOptions{Ready: cs.Ready})
	_, body := get(t, h, "/metrics")
	wantLine(t, body, `csi_gorbd_ceph_session_up{cluster="`+clusterID+`",user="admin"} 1`)
	wantLine(t, body, `csi_gorbd_grpc_errors_total{code="NotFound",method="ValidateVolumeCapabilities"} 1`)
	if strings.Contains(body, key) {
		t.Error("the user key appears in the metrics")
	}
	if code, _ := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with the cluster up: %d", code)
	}
}
