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

// TestFilesystems attaches in-process memory exports through the attach
// manager (two connections each) and, for ext4 and xfs: mkfs, mount,
// write, grow the mounted filesystem online (export grows, the kernel
// learns the size through NBD_CMD_RECONFIGURE, resize2fs / xfs_growfs),
// write into the new space, umount, drop caches, remount, verify, detach.
func TestFilesystems(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 5*time.Minute)
	m, dir := memoryManager(t, ctx)
	for _, c := range []struct {
		fs       string
		from, to int64
		grow     string
	}{
		{"ext4", 128 << 20, 256 << 20, "resize2fs "},
		{"xfs", 320 << 20, 448 << 20, "xfs_growfs /mnt/"}, // mkfs.xfs wants >= 300 MB
	} {
		t0 := time.Now()
		id := "vol-" + c.fs
		rec, err := m.Attach(ctx, attach.Spec{ID: id, Image: "memory:" + strconv.Itoa(int(c.from)), Connections: 2})
		if err != nil {
			t.Fatal(err)
		}
		dev, mnt := rec.Device(), "/mnt/"+c.fs
		t.Logf("%s: attached %s", c.fs, dev)
		if on, err := attach.IOFlusher(); err != nil || !on {
			t.Errorf("PR_SET_IO_FLUSHER on this thread: %v, %v (manager: %v)", on, err, m.IOFlusherError())
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("state dir: %v", err)
		}
		record := dir + "/nbd" + strconv.Itoa(rec.Index) + ".json"
		if st, err := os.Stat(record); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("record file: %v", err)
		}
		if b, _ := nbdnl.BackendIdentifier(rec.Index); b != id {
			t.Errorf("sysfs backend %q, want %q", b, id)
		}

		mkfs(t, c.fs, dev)
		mount(t, c.fs, dev, mnt)
		want := randomFile(t, "/tmp/payload", 8<<20)
		sh(t, "cp /tmp/payload "+mnt+"/payload && sync")

		if err := m.Resize(ctx, dev, c.to); err != nil {
			t.Fatal(err)
		}
		if n, _ := nbdnl.SizeBytes(rec.Index); n != c.to {
			t.Errorf("%s: device size %d after resize, want %d", c.fs, n, c.to)
		}
		if c.fs == "ext4" {
			sh(t, c.grow+dev)
		} else {
			sh(t, c.grow+c.fs)
		}
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(mnt, &sfs); err != nil {
			t.Fatal(err)
		}
		if total := int64(sfs.Blocks) * sfs.Bsize; total <= c.from {
			t.Errorf("%s: filesystem is %d bytes after growing to %d", c.fs, total, c.to)
		} else {
			t.Logf("%s: grown online to %d MiB", c.fs, total>>20)
		}
		// Write after the growth (where the allocator puts it is its business).
		big := randomFile(t, "/tmp/big", 16<<20)
		sh(t, "cp /tmp/big "+mnt+"/big && sync")
		os.Remove("/tmp/big")

		sh(t, "umount "+mnt)
		dropCaches(t)
		mount(t, c.fs, dev, mnt)
		if got := fileSum(t, mnt+"/payload"); got != want {
			t.Errorf("%s: payload changed after remount", c.fs)
		}
		if got := fileSum(t, mnt+"/big"); got != big {
			t.Errorf("%s: file in the grown space changed after remount", c.fs)
		}
		sh(t, "umount "+mnt)
		if err := m.Detach(ctx, id); err != nil {
			t.Fatal(err)
		}
		waitDisconnected(t, ctx, rec.Index)
		if _, err := os.Stat(record); !os.IsNotExist(err) {
			t.Errorf("record still there after Detach: %v", err)
		}
		t.Logf("%s: attach..detach in %v", c.fs, time.Since(t0).Round(time.Millisecond))
	}
}
