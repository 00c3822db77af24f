package nodeserver

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSameDevice: the kubelet's per-pod node of a block volume is
// recognised by its device number, not by its path.
func TestSameDevice(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, minor uint32) string {
		p := filepath.Join(dir, name)
		if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(43, minor))); err != nil {
			t.Skipf("cannot make a block device node here: %v", err)
		}
		return p
	}
	nbd0, podNode, nbd1 := mk("nbd0", 0), mk("pod-node", 0), mk("nbd1", 32)
	reg := filepath.Join(dir, "file")
	if err := os.WriteFile(reg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, dev string
		want      bool
	}{
		{podNode, nbd0, true},
		{nbd1, nbd0, false},
		{reg, nbd0, false},
		{podNode, "", false},
		{filepath.Join(dir, "missing"), nbd0, false},
	} {
		if got := sameDevice(c.path, c.dev); got != c.want {
			t.Errorf("sameDevice(%s, %s) = %v, want %v", c.path, c.dev, got, c.want)
		}
	}
}
