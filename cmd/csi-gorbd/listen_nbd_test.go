package main

import (
	"bytes"
	"context"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestListenNBDLoopbackOnly: tcp: listens on loopback addresses; any
// other address (every interface, a routable IP) needs --allow-remote.
func TestListenNBDLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for _, ok := range []string{"tcp:127.0.0.1:0", "tcp:127.0.0.2:0", "tcp:localhost:0", "tcp4:127.0.0.1:0"} {
		l, err := listenNBD(ctx, ok, false)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
			continue
		}
		l.Close()
	}
	remote := []string{"tcp::0", "tcp:0.0.0.0:0", "tcp:[::]:0", "tcp6:[::]:0"}
	if ip := routableIP(t); ip != "" {
		remote = append(remote, "tcp:"+net.JoinHostPort(ip, "0"))
	}
	for _, bad := range remote {
		if l, err := listenNBD(ctx, bad, false); err == nil || !strings.Contains(err.Error(), "--allow-remote") {
			if l != nil {
				l.Close()
			}
			t.Errorf("%s without --allow-remote: %v", bad, err)
		}
	}
	l, err := listenNBD(ctx, "tcp:0.0.0.0:0", true)
	if err != nil {
		t.Fatalf("tcp:0.0.0.0:0 with --allow-remote: %v", err)
	}
	l.Close()
}

// routableIP is an address of this host that is not loopback ("" if none).
func routableIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// TestListenNBDUnixPrivate: the unix socket is 0600 whatever the umask,
// and a regular file at the path is an error, not deleted.
func TestListenNBDUnixPrivate(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "nbd.sock")
	old := syscall.Umask(0)
	l, err := listenNBD(context.Background(), "unix:"+sock, false)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v, want a 0600 socket", fi.Mode(), err)
	}
	file := filepath.Join(dir, "data")
	os.WriteFile(file, []byte("keep me"), 0o644)
	if l, err := listenNBD(context.Background(), "unix:"+file, false); err == nil {
		l.Close()
		t.Fatal("listening over a regular file succeeded")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatalf("the regular file became %q", b)
	}
}

// TestNBDServeRefusesRemote: `nbd serve --listen tcp:0.0.0.0:PORT` stops
// before serving and names --allow-remote.
func TestNBDServeRefusesRemote(t *testing.T) {
	root := newRootCmd()
	var errb bytes.Buffer
	root.SetErr(&errb)
	root.SetArgs([]string{"nbd", "serve", "--memory", "1M", "--listen", "tcp:0.0.0.0:0"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--allow-remote") {
		t.Fatalf("nbd serve on 0.0.0.0: %v", err)
	}
}

// TestNBDServeLimits: the per-export caps reach the server, with sane
// defaults (16 connections, 256 MiB in flight per export).
func TestNBDServeLimits(t *testing.T) {
	c := (&nbdCLI{}).serveCmd()
	if d := c.Flags().Lookup("max-connections").DefValue; d != "16" {
		t.Errorf("--max-connections default %s", d)
	}
	o := nbdServeOpts{maxConns: 16, exportBytes: c.Flags().Lookup("max-export-inflight").DefValue}
	srv, err := o.server()
	if err != nil || srv.MaxConnsPerExport != 16 || srv.MaxInFlightPerExport != 256<<20 {
		t.Fatalf("defaults: %+v %v", srv, err)
	}
	o = nbdServeOpts{maxConns: 2, exportBytes: "8M", maxInFlight: "1M"}
	if srv, err = o.server(); err != nil || srv.MaxConnsPerExport != 2 || srv.MaxInFlightPerExport != 8<<20 || srv.Options.MaxInFlight != 1<<20 {
		t.Fatalf("set: %+v %v", srv, err)
	}
	for _, bad := range []nbdServeOpts{{maxConns: -1, exportBytes: "1M"}, {exportBytes: "lots"}} {
		if _, err := bad.server(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
