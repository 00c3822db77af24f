package guest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/test/vm/guest/hostfwd"
)

// The host's Ceph cluster, as test/vm/run.sh describes it to the guest
// with VM_NET=1 (the env file /etc/gorbd-vm.env, exported by init.sh):
//
//	GORBD_VM_CEPH_CLUSTER  cluster name on the host (pacific)
//	GORBD_VM_CEPH_MON      mon_host string, 127.0.0.1 addresses
//	GORBD_VM_CEPH_USER     entity name (client.admin)
//	GORBD_VM_CEPH_KEY      its cephx key
//	GORBD_VM_CEPH_POOL     a pool to make test images in (rbd)
//	GORBD_VM_CEPH_PORTS    mon + OSD ports to forward, "7500-7549"
//	GORBD_VM_HOST          the host as the guest sees it (10.0.2.2)
//
// TestMain starts the forwarder before any test, so every process in the
// guest (the tests, csi-gorbd, a CSI node plugin) reaches the cluster at
// the addresses its monmap and osdmap advertise.

// hostFwd is the forwarder TestMain started (nil without a cluster).
var (
	hostFwd    *hostfwd.Forwarder
	hostFwdErr error
)

func TestMain(m *testing.M) {
	if ports := os.Getenv("GORBD_VM_CEPH_PORTS"); ports != "" && os.Getenv("GORBD_VM_GUEST") != "" {
		hostFwd, hostFwdErr = startHostForwarder(ports)
	}
	code := m.Run()
	if hostFwd != nil {
		st := hostFwd.Stats()
		fmt.Printf("hostfwd: %d connections (%d refused by the host), %d bytes out, %d in\n",
			st.Accepted, st.DialFailed, st.BytesOut, st.BytesIn)
		hostFwd.Close()
	}
	os.Exit(code)
}

func startHostForwarder(portList string) (*hostfwd.Forwarder, error) {
	ports, err := hostfwd.ParsePorts(portList)
	if err != nil {
		return nil, err
	}
	return hostfwd.Start(context.Background(), hostfwd.Config{
		TargetHost: os.Getenv("GORBD_VM_HOST"), // "" = 10.0.2.2
		Ports:      ports,
	})
}

// hostCeph is the host cluster as seen from the guest.
type hostCeph struct {
	Cluster string
	MonHost string
	User    string
	Key     string
	Pool    string
	// Keyring is a 0600 keyring file holding Key, so the key never shows
	// up on a command line.
	Keyring string
}

// needHostCeph returns the host cluster, skipping the test when the VM has
// none (VM_NET=0), or failing it when GORBD_REQUIRE_CLUSTERS=1 (CI).
func needHostCeph(t testing.TB) *hostCeph {
	t.Helper()
	needVM(t)
	c := &hostCeph{
		Cluster: os.Getenv("GORBD_VM_CEPH_CLUSTER"),
		MonHost: os.Getenv("GORBD_VM_CEPH_MON"),
		User:    os.Getenv("GORBD_VM_CEPH_USER"),
		Key:     os.Getenv("GORBD_VM_CEPH_KEY"),
		Pool:    os.Getenv("GORBD_VM_CEPH_POOL"),
	}
	if c.MonHost == "" || c.Key == "" {
		msg := "no host Ceph cluster in the VM: run test/vm/run.sh with VM_NET=1 and a started cluster"
		if os.Getenv("GORBD_REQUIRE_CLUSTERS") == "1" || os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if hostFwdErr != nil {
		t.Fatalf("forwarder to the host: %v", hostFwdErr)
	}
	if c.User == "" {
		c.User = "client.admin"
	}
	if c.Pool == "" {
		c.Pool = "rbd"
	}
	dir := "/run/gorbd-vm"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keyring = filepath.Join(dir, "keyring")
	ring := fmt.Sprintf("[%s]\n\tkey = %s\n", c.User, c.Key)
	if err := os.WriteFile(c.Keyring, []byte(ring), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Args are csi-gorbd's global flags for the cluster.
func (c *hostCeph) Args() []string {
	return []string{"--mon-host", c.MonHost, "--name", c.User, "--keyring", c.Keyring}
}

// CLI runs csi-gorbd with the cluster's flags and args and returns its
// output, failing the test on error.
func (c *hostCeph) CLI(t testing.TB, args ...string) string {
	t.Helper()
	q := make([]string, 0, len(args)+6)
	for _, a := range append(c.Args(), args...) {
		q = append(q, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	return sh(t, os.Getenv("GORBD_BIN")+" "+strings.Join(q, " "))
}

// Config is the rados client configuration for the cluster.
func (c *hostCeph) Config() rados.Config {
	return rados.Config{Monitors: []string{c.MonHost}, User: c.User, Keyring: c.Keyring}
}

// TestHostCeph checks the VM's path to the host cluster: our rados client
// in the guest authenticates with the mon through the forwarder, sees the
// host cluster's fsid, and writes, reads and removes an object (an OSD
// op, so the OSD addresses from the osdmap work in the guest too).
func TestHostCeph(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 2*time.Minute)
	conn, err := rados.Connect(ctx, c.Config())
	if err != nil {
		t.Fatalf("connect to %s through the forwarder: %v", c.MonHost, err)
	}
	defer conn.Close()
	if want := os.Getenv("GORBD_VM_CEPH_FSID"); want != "" && conn.FSID() != want {
		t.Errorf("fsid %s, want the host cluster's %s", conn.FSID(), want)
	}
	io, err := conn.OpenIOContext(ctx, c.Pool)
	if err != nil {
		t.Fatal(err)
	}
	oid := fmt.Sprintf("vmC-hostceph-%d", time.Now().UnixNano())
	data := []byte("written from inside the test VM\n")
	if err := io.WriteFull(ctx, oid, data); err != nil {
		t.Fatalf("write %s: %v", oid, err)
	}
	defer io.Remove(context.WithoutCancel(ctx), oid)
	got, err := io.Read(ctx, oid, 0, 4096)
	if err != nil || string(got) != string(data) {
		t.Fatalf("read %s: %q, %v", oid, got, err)
	}
	if err := io.Remove(ctx, oid); err != nil {
		t.Fatalf("remove %s: %v", oid, err)
	}
	st := hostFwd.Stats()
	t.Logf("cluster %s (fsid %s) reached through %d forwarded connections", c.Cluster, conn.FSID(), st.Accepted)
	if st.Accepted < 2 {
		t.Errorf("forwarder accepted %d connections; want the mon's and an OSD's", st.Accepted)
	}
}
