package guest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

func needVM(t testing.TB) {
	t.Helper()
	if os.Getenv("GORBD_VM_GUEST") == "" {
		t.Skip("runs inside the test VM only: bash test/vm/run.sh")
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sh runs a shell command line and fails the test on error.
func sh(t testing.TB, cmdline string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	return string(out)
}

func shOK(cmdline string) (string, error) {
	out, err := exec.Command("sh", "-c", cmdline).CombinedOutput()
	return string(out), err
}

func randomFile(t *testing.T, path string, size int) string {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func dropCaches(t *testing.T) {
	t.Helper()
	sh(t, "sync; echo 3 > /proc/sys/vm/drop_caches")
}

func mkfs(t *testing.T, fstype, dev string) {
	t.Helper()
	switch fstype {
	case "ext4":
		sh(t, "mkfs.ext4 -q -F "+dev)
	case "xfs":
		sh(t, "mkfs.xfs -q -f "+dev)
	default:
		t.Fatalf("no mkfs for %s", fstype)
	}
}

func mount(t *testing.T, fstype, dev, dir string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	sh(t, "mount -t "+fstype+" "+dev+" "+dir)
}

// clearDmesg empties the kernel ring buffer so kernelErrors sees only what
// follows.
func clearDmesg(t *testing.T) { sh(t, "dmesg -c > /dev/null") }

var badKernelLine = regexp.MustCompile(`I/O error|EXT4-fs error|XFS.*(error|Corruption)|Remounting filesystem read-only|Aborting journal|shutting down filesystem|Buffer I/O`)

// kernelErrors returns the kernel log lines that mean data was lost.
func kernelErrors(t *testing.T) []string {
	t.Helper()
	var bad []string
	sc := bufio.NewScanner(strings.NewReader(sh(t, "dmesg")))
	for sc.Scan() {
		if badKernelLine.MatchString(sc.Text()) {
			bad = append(bad, sc.Text())
		}
	}
	return bad
}

func dmesgTail(n int) string {
	out, _ := shOK("dmesg | tail -n " + strconv.Itoa(n))
	return out
}

// memoryManager is an attach.Manager whose factory serves "memory:SIZE"
// images from in-process memory and "file:PATH" from files.
func memoryManager(t *testing.T, ctx context.Context) (*attach.Manager, string) {
	t.Helper()
	dir := t.TempDir() + "/state"
	m, err := attach.New(ctx, attach.Config{
		StateDir: dir,
		Factory: func(ctx context.Context, image string, ro bool) (nbd.Backend, error) {
			if p, ok := strings.CutPrefix(image, "file:"); ok {
				return attach.OpenFileBackend(p, 0, ro)
			}
			size, err := strconv.ParseInt(strings.TrimPrefix(image, "memory:"), 10, 64)
			if err != nil {
				return nil, err
			}
			return memory.New(size), nil
		},
		OnEvent: func(e attach.Event) { t.Log("event:", e) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}
