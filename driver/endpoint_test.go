package driver_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/driver"
	"github.com/csi-gorbd/csi-gorbd/internal/unixsock"
)

// TestEndpointRemovesOnlySockets: a socket left at the endpoint path by an
// earlier run is replaced; a regular file there is an error and stays.
func TestEndpointRemovesOnlySockets(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "csi.sock")
	old, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close() // a crashed plugin's socket
	ln, err := driver.Listen("unix://" + sock)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()

	file := filepath.Join(dir, "important")
	if err := os.WriteFile(file, []byte("not a socket"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ln, err := driver.Listen("unix://" + file); !errors.Is(err, unixsock.ErrNotSocket) {
		if err == nil {
			ln.Close()
		}
		t.Fatalf("over a regular file: %v, want ErrNotSocket", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "not a socket" {
		t.Fatalf("the regular file: %q %v", b, err)
	}
}

// TestEndpointTCPRefusedForNode: modes node and all never listen on tcp;
// the controller may.
func TestEndpointTCPRefusedForNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run returns as soon as it serves
	for _, mode := range []string{driver.ModeNode, driver.ModeAll} {
		d, err := driver.New(driver.Options{Name: "test.csi-gorbd.io", NodeID: "n1", Mode: mode,
			Controller: csi.UnimplementedControllerServer{}, Node: csi.UnimplementedNodeServer{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Run(ctx, "tcp://127.0.0.1:0"); !errors.Is(err, driver.ErrTCPNode) {
			t.Errorf("mode %s on tcp: %v, want ErrTCPNode", mode, err)
		}
		if err := d.Run(ctx, "unix://"+filepath.Join(t.TempDir(), "csi.sock")); err != nil {
			t.Errorf("mode %s on unix: %v", mode, err)
		}
	}
	d, err := driver.New(driver.Options{Name: "test.csi-gorbd.io", Mode: driver.ModeController, Controller: csi.UnimplementedControllerServer{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(ctx, "tcp://127.0.0.1:0"); err != nil {
		t.Errorf("controller on tcp: %v", err)
	}
}
