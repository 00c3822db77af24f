package guest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// TestServerRestartRBD is TestServerRestart with the device served from an
// RBD image on the host's cluster (reached through the forwarder): an ext4
// filesystem under a write loop, "csi-gorbd nbd map POOL/IMAGE" killed
// with -9, "csi-gorbd nbd recover" takes the device over (after the dead
// process's exclusive lock is released or broken) and the loop finishes
// with no I/O error, no read-only remount, a clean fsck and every file
// verified. Then the whole device must equal "csi-gorbd rbd export" of
// the image read by a separate client: the data is in RADOS, not in a
// cache of the guest.
func TestServerRestartRBD(t *testing.T) {
	c := needHostCeph(t)
	ctx := testCtx(t, 8*time.Minute)
	const state, mnt = "/tmp/nbd-state-rbd", "/mnt/restart-rbd"
	start := time.Now()
	phase := func(what string) { t.Logf("[%5.1fs] %s", time.Since(start).Seconds(), what) }
	os.RemoveAll(state)
	clearDmesg(t)
	image := fmt.Sprintf("%s/vmC-restart-%d", c.Pool, time.Now().UnixNano())
	const imageSize = 48 << 20
	c.CLI(t, "rbd", "create", image, "--size", strconv.Itoa(imageSize>>20)+"M")
	t.Cleanup(func() {
		if out, err := exec.Command(os.Getenv("GORBD_BIN"), append(c.Args(), "rbd", "rm", image)...).CombinedOutput(); err != nil {
			t.Logf("rbd rm %s: %v\n%s", image, err, out)
		}
	})
	t.Logf("image %s on cluster %s", image, c.Cluster)

	mapArgs := append(c.Args(), "nbd", "map", image, "--connections", "2", "--id", "vol-rbd-restart",
		"--state-dir", state, "--timeout", "10s", "--dead-conn-timeout", "150s")
	mapCmd, dev := startCLI(t, ctx, mapArgs...)
	t.Logf("csi-gorbd nbd map (pid %d) attached %s", mapCmd.Process.Pid, dev)
	index, err := nbdnl.ParseDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	phase("mapped")
	mkfs(t, "ext4", dev)
	mount(t, "ext4", dev, mnt)
	phase("mkfs + mount")
	pre := randomFile(t, "/tmp/pre-rbd", 2<<20)
	sh(t, "dd if=/tmp/pre-rbd of="+mnt+"/pre bs=1M conv=fsync 2>/dev/null")

	const files = 16
	loop := startWriteLoop(t, ctx, mnt, files)
	mapCmd.Process.Kill()
	mapCmd.Wait()
	killed := time.Now()
	n0 := lines("/tmp/sums")
	t.Logf("server killed after %d files", n0)
	time.Sleep(time.Second)
	if n1 := lines("/tmp/sums"); n1 > n0+1 {
		t.Errorf("%d files written with no server", n1-n0)
	}

	recCmd, recLine := startCLI(t, ctx, append(c.Args(), "nbd", "recover", "--state-dir", state)...)
	t.Logf("csi-gorbd nbd recover (pid %d) after %v: %s", recCmd.Process.Pid,
		time.Since(killed).Round(time.Millisecond), recLine)
	if !strings.HasPrefix(recLine, dev+"\t") {
		t.Errorf("recover printed %q, want %s first", recLine, dev)
	}
	if err := waitCmd(t, ctx, loop); err != nil {
		t.Fatalf("write loop failed across the restart: %v\n%s", err, dmesgTail(30))
	}
	t.Logf("write loop finished %v after the kill", time.Since(killed).Round(time.Millisecond))
	verifyRestarted(t, dev, mnt, pre, files)
	phase("verified (fsck, remount, files)")

	// The device against the image as another client reads it (both
	// reads at once: over qemu's user network each is latency bound).
	dropCaches(t)
	devSum := make(chan string, 1)
	go func() {
		out, err := shOK("dd if=" + dev + " bs=1M iflag=direct 2>/dev/null | sha256sum")
		if err != nil {
			out = "error: " + err.Error()
		}
		devSum <- strings.Fields(out + " x")[0]
	}()
	exp := exec.CommandContext(ctx, os.Getenv("GORBD_BIN"), append(c.Args(), "rbd", "export", image, "-")...)
	exp.Stderr = testWriter{t, "export"}
	out, err := exp.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, _ := io.Copy(h, out)
	if err := exp.Wait(); err != nil {
		t.Fatalf("rbd export: %v", err)
	}
	ds := <-devSum
	if got := hex.EncodeToString(h.Sum(nil)); got != ds || n != imageSize {
		t.Errorf("rbd export: %d bytes, sha256 %s; the device reads %s", n, got, ds)
	} else {
		t.Logf("rbd export of %s equals %s (sha256 %s)", image, dev, ds[:16])
	}
	phase("device equals rbd export")
	sh(t, os.Getenv("GORBD_BIN")+" nbd unmap "+dev+" --state-dir "+state)
	if err := waitCmd(t, ctx, recCmd); err != nil {
		t.Errorf("recover process: %v", err)
	}
	waitDisconnected(t, ctx, index)
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state dir not empty after unmap: %v", ents)
	}
}
