package main

import (
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "1K": 1 << 10, "1k": 1 << 10, "64M": 64 << 20, "64MiB": 64 << 20,
		"2G": 2 << 30, "2GB": 2 << 30, "1T": 1 << 40, "1Ti": 1 << 40,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1X", "1.5G", "9999999999P", "1 G B"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestListenNBD(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := listenNBD(context.Background(), "unix:"+sock, false)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	for _, bad := range []string{"", "unix:", "udp:1.2.3.4:5", "/tmp/x"} {
		if l, err := listenNBD(context.Background(), bad, false); err == nil {
			l.Close()
			t.Errorf("listenNBD(%q) succeeded", bad)
		}
	}
}

// TestNBDServeCommand runs `nbd serve --memory` in-process and reads the
// export back with nbdinfo when it is installed.
func TestNBDServeCommand(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	args := []string{"nbd", "serve", "--memory", "3M", "--listen", "unix:" + sock, "--name", "d", "--read-only"}
	root := newRootCmd()
	root.SetArgs(args)
	root.SetErr(io.Discard)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("nbd serve: %v", err)
		}
	}()
	var c net.Conn
	for i := 0; ; i++ {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("server never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the socket to appear
	}
	greeting := make([]byte, 18)
	if _, err := io.ReadFull(c, greeting); err != nil || string(greeting[:8]) != "NBDMAGIC" {
		t.Fatalf("greeting %q %v", greeting, err)
	}
	c.Close()
	if _, err := exec.LookPath("nbdinfo"); err != nil {
		return
	}
	out, err := exec.Command("nbdinfo", "--json", "nbd+unix:///?socket="+sock).CombinedOutput()
	if err != nil {
		t.Fatalf("nbdinfo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"export-size": 3145728`) || !strings.Contains(string(out), `"is_read_only": true`) {
		t.Fatalf("nbdinfo:\n%s", out)
	}
}
