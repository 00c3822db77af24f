package guest

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// TestAttachFilesystems attaches an in-process memory export with two
// connections through the attach manager, runs ext4 and xfs round trips on
// it, and detaches.
func TestAttachFilesystems(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 4*time.Minute)
	m, dir := memoryManager(t, ctx)
	rec, err := m.Attach(ctx, attach.Spec{ID: "vol-fs", Image: "memory:1073741824", Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	dev := rec.Device()
	t.Logf("attached %s", dev)
	if on, err := attach.IOFlusher(); err != nil || !on {
		t.Errorf("PR_SET_IO_FLUSHER on this thread: %v, %v (manager: %v)", on, err, m.IOFlusherError())
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v", st.Mode(), err)
	}
	rst, err := os.Stat(dir + "/nbd" + strconv.Itoa(rec.Index) + ".json")
	if err != nil || rst.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v", err)
	}
	if id, _ := nbdnl.BackendIdentifier(rec.Index); id != "vol-fs" {
		t.Errorf("backend identifier %q", id)
	}
	for _, fs := range []string{"ext4", "xfs"} {
		t0 := time.Now()
		fsRoundTrip(t, fs, dev)
		t.Logf("%s round trip on %s: %v", fs, dev, time.Since(t0).Round(time.Millisecond))
	}
	if err := m.Detach(ctx, "vol-fs"); err != nil {
		t.Fatal(err)
	}
	waitDisconnected(t, ctx, rec.Index)
	if _, err := os.Stat(dir + "/nbd" + strconv.Itoa(rec.Index) + ".json"); !os.IsNotExist(err) {
		t.Errorf("record still there after Detach: %v", err)
	}
}

// TestOnlineResize grows a mounted ext4 and a mounted xfs: the export
// grows, the kernel learns the size through NBD_CMD_RECONFIGURE, and
// resize2fs / xfs_growfs use the new space.
func TestOnlineResize(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 4*time.Minute)
	m, _ := memoryManager(t, ctx)
	for _, c := range []struct {
		fs           string
		from, to     int64
		grow         string
		minAfterGrow uint64
	}{
		{"ext4", 256 << 20, 512 << 20, "resize2fs %s", 400 << 20},
		{"xfs", 1 << 30, 1536 << 20, "xfs_growfs /mnt/grow", 1300 << 20},
	} {
		id := "vol-grow-" + c.fs
		rec, err := m.Attach(ctx, attach.Spec{ID: id, Image: "memory:" + strconv.Itoa(int(c.from))})
		if err != nil {
			t.Fatal(err)
		}
		dev := rec.Device()
		mkfs(t, c.fs, dev)
		mount(t, c.fs, dev, "/mnt/grow")
		want := randomFile(t, "/tmp/grow", 1<<20)
		sh(t, "cp /tmp/grow /mnt/grow/data && sync")
		if err := m.Resize(ctx, id, c.to); err != nil {
			t.Fatal(err)
		}
		if n, _ := nbdnl.SizeBytes(rec.Index); n != c.to {
			t.Errorf("%s: device size %d after resize, want %d", c.fs, n, c.to)
		}
		cmd := c.grow
		if c.fs == "ext4" {
			cmd = "resize2fs " + dev
		}
		sh(t, cmd)
		var sfs syscall.Statfs_t
		if err := syscall.Statfs("/mnt/grow", &sfs); err != nil {
			t.Fatal(err)
		}
		if total := sfs.Blocks * uint64(sfs.Bsize); total < c.minAfterGrow {
			t.Errorf("%s: filesystem is %d bytes after growing, want >= %d", c.fs, total, c.minAfterGrow)
		} else {
			t.Logf("%s grown online to %d MiB", c.fs, total>>20)
		}
		// Use the new space, then check everything after a remount.
		sh(t, "dd if=/dev/urandom of=/mnt/grow/big bs=1M count=32 conv=fsync 2>/dev/null")
		sh(t, "umount /mnt/grow")
		dropCaches(t)
		mount(t, c.fs, dev, "/mnt/grow")
		if got := fileSum(t, "/mnt/grow/data"); got != want {
			t.Errorf("%s: data changed across resize", c.fs)
		}
		sh(t, "umount /mnt/grow")
		if err := m.Detach(ctx, dev); err != nil {
			t.Fatal(err)
		}
	}
}
