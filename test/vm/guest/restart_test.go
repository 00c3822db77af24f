package guest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/nbdnl"
)

// startCLI starts csi-gorbd with args, its stderr into the test log, and
// returns the process and the first line it prints on stdout.
func startCLI(t *testing.T, ctx context.Context, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Getenv("GORBD_BIN"), args...)
	tag := args[0]
	for i, a := range args[:len(args)-1] {
		if a == "nbd" {
			tag = args[i+1]
			break
		}
	}
	cmd.Stderr = testWriter{t, tag}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if l == "" {
			t.Fatalf("csi-gorbd %v printed nothing", args)
		}
		return cmd, l
	case <-ctx.Done():
		t.Fatalf("csi-gorbd %v: no output", args)
	}
	return nil, ""
}

type testWriter struct {
	t   *testing.T
	tag string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("[%s] %s", w.tag, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitCmd(t *testing.T, ctx context.Context, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish: %v", cmd.Args, ctx.Err())
		return ctx.Err()
	}
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestServerRestart is the restart test: an ext4 filesystem on a device
// served by "csi-gorbd nbd map" (file backend on tmpfs, so the data outlives
// the process) is under a write loop when the server is killed with -9. A
// new "csi-gorbd nbd recover" reconfigures the device; the loop must finish
// without an I/O error, the filesystem must stay read-write, fsck must be
// clean and every file must read back.
func TestServerRestart(t *testing.T) {
	needVM(t)
	ctx := testCtx(t, 5*time.Minute)
	const state, img, mnt = "/tmp/nbd-state-restart", "/tmp/restart.img", "/mnt/restart"
	os.RemoveAll(state)
	os.Remove(img)
	os.Remove("/tmp/sums")
	clearDmesg(t)

	mapCmd, dev := startCLI(t, ctx, "nbd", "map", "--file", img, "--size", "256M", "--connections", "2",
		"--id", "vol-restart", "--state-dir", state, "--timeout", "5s", "--dead-conn-timeout", "90s")
	t.Logf("csi-gorbd nbd map (pid %d) attached %s", mapCmd.Process.Pid, dev)
	// A second device, raw, in another map process: recover takes over
	// every record.
	const img2 = "/tmp/restart2.img"
	os.Remove(img2)
	map2, dev2 := startCLI(t, ctx, "nbd", "map", "--file", img2, "--size", "16M",
		"--id", "vol-restart-2", "--state-dir", state, "--dead-conn-timeout", "90s")
	raw := randomFile(t, "/tmp/raw2", 1<<20)
	sh(t, "dd if=/tmp/raw2 of="+dev2+" bs=1M oflag=direct conv=fsync 2>/dev/null")
	index, err := nbdnl.ParseDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	mkfs(t, "ext4", dev)
	mount(t, "ext4", dev, mnt)
	pre := randomFile(t, "/tmp/pre", 4<<20)
	sh(t, "dd if=/tmp/pre of="+mnt+"/pre bs=1M conv=fsync 2>/dev/null")

	const files = 20
	loop := startWriteLoop(t, ctx, mnt, files)

	// kill -9 the servers, one in the middle of the loop.
	mapCmd.Process.Kill()
	map2.Process.Kill()
	mapCmd.Wait()
	map2.Wait()
	killed := time.Now()
	n0 := lines("/tmp/sums")
	t.Logf("server killed after %d files", n0)
	time.Sleep(time.Second)
	if n1 := lines("/tmp/sums"); n1 > n0+1 {
		t.Errorf("%d files written with no server", n1-n0)
	}
	if out, err := shOK(os.Getenv("GORBD_BIN") + " nbd list --state-dir " + state); err != nil {
		t.Errorf("nbd list: %v\n%s", err, out)
	} else {
		t.Logf("nbd list with the server dead:\n%s", out)
	}

	recCmd, recLine := startCLI(t, ctx, "nbd", "recover", "--state-dir", state)
	t.Logf("csi-gorbd nbd recover (pid %d): %s", recCmd.Process.Pid, recLine)
	if !strings.HasPrefix(recLine, dev+"\t") {
		t.Errorf("recover printed %q, want %s first", recLine, dev)
	}
	if err := waitCmd(t, ctx, loop); err != nil {
		t.Fatalf("write loop failed across the restart: %v\n%s", err, dmesgTail(30))
	}
	t.Logf("write loop finished %v after the kill", time.Since(killed).Round(time.Millisecond))
	if got := sh(t, "dd if="+dev2+" bs=1M count=1 iflag=direct 2>/dev/null | sha256sum"); !strings.HasPrefix(got, raw) {
		t.Errorf("%s after recover: sha256 %s, want %s", dev2, got, raw)
	}

	verifyRestarted(t, dev, mnt, pre, files)

	// unmap from a third process: the recover process sees NBD_CMD_DISC,
	// lets go and exits.
	sh(t, os.Getenv("GORBD_BIN")+" nbd unmap "+dev+" --state-dir "+state)
	sh(t, os.Getenv("GORBD_BIN")+" nbd unmap vol-restart-2 --state-dir "+state)
	if err := waitCmd(t, ctx, recCmd); err != nil {
		t.Errorf("recover process: %v", err)
	}
	waitDisconnected(t, ctx, index)
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state dir not empty after unmap: %v", ents)
	}
	os.Remove(img)
	os.Remove(img2)
}

// startWriteLoop starts a shell loop that writes files fsync'ed 1 MiB files
// f1..fN into mnt, appending "sha256 fN" to /tmp/sums after each, and
// returns once 5 are written.
func startWriteLoop(t *testing.T, ctx context.Context, mnt string, files int) *exec.Cmd {
	t.Helper()
	os.Remove("/tmp/sums")
	loop := exec.Command("sh", "-c", `set -e
for i in $(seq 1 `+strconv.Itoa(files)+`); do
	dd if=/dev/urandom of=/tmp/src bs=64k count=16 2>/dev/null
	dd if=/tmp/src of=`+mnt+`/f$i bs=64k conv=fsync 2>/dev/null
	echo "$(sha256sum < /tmp/src | cut -d' ' -f1) f$i" >> /tmp/sums
done`)
	loop.Stdout = testWriter{t, "loop"}
	loop.Stderr = testWriter{t, "loop"}
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if loop.ProcessState == nil {
			loop.Process.Kill()
			loop.Wait()
		}
	})
	for lines("/tmp/sums") < 5 {
		if ctx.Err() != nil {
			t.Fatal("write loop makes no progress")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return loop
}

// verifyRestarted checks an ext4 filesystem on dev, mounted at mnt, after
// the write loop ran across a server restart: still read-write, no I/O
// errors in the kernel log, the kernel took a new socket, fsck clean, and
// after a remount with cold caches the pre-restart file (sha256 pre) and
// every file of /tmp/sums read back. It leaves mnt unmounted.
func verifyRestarted(t *testing.T, dev, mnt, pre string, files int) {
	t.Helper()
	if m := sh(t, "grep ' "+mnt+" ' /proc/mounts"); !strings.Contains(m, " rw,") {
		t.Errorf("filesystem no longer read-write: %s", m)
	}
	if bad := kernelErrors(t); len(bad) > 0 {
		t.Errorf("kernel reported errors:\n%s", strings.Join(bad, "\n"))
	}
	if !strings.Contains(sh(t, "dmesg"), "reconnected socket") {
		t.Errorf("no 'reconnected socket' in the kernel log:\n%s", dmesgTail(20))
	}
	sh(t, "umount "+mnt)
	if out, err := shOK("fsck.ext4 -fn " + dev); err != nil {
		t.Errorf("fsck after the restart: %v\n%s", err, out)
	}
	dropCaches(t)
	mount(t, "ext4", dev, mnt)
	if got := fileSum(t, mnt+"/pre"); got != pre {
		t.Errorf("pre-restart file changed")
	}
	sums, _ := os.ReadFile("/tmp/sums")
	verified := 0
	for _, l := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, _ := strings.Cut(l, " ")
		if got := fileSum(t, mnt+"/"+name); got != sum {
			t.Errorf("%s: sha256 %s, want %s", name, got, sum)
		}
		verified++
	}
	if verified != files {
		t.Errorf("verified %d files, want %d", verified, files)
	}
	sh(t, "umount "+mnt)
}
