package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

func TestBytesIEC(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 19: "19 B", 1023: "1023 B", 1024: "1 KiB", 27469: "27 KiB", 1536: "1.5 KiB",
		1073714355: "1024 MiB", 1073741824: "1 GiB", 10239: "10 KiB",
	} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the CLI once per test run (CGO_ENABLED=0, as shipped).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "csi-gorbd-test")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "csi-gorbd")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("building csi-gorbd: %v", buildErr)
	}
	return binPath
}

// run executes a command and returns stdout, stderr and the exit code.
func run(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), errb.String(), code
}

func needCephCLI(t *testing.T) {
	if _, err := exec.LookPath("ceph"); err != nil {
		cephtest.Missing(t, "ceph CLI not installed (test/deps.sh installs ceph-common)")
	}
}

// TestCLIAgainstCeph compares csi-gorbd with the ceph CLI on pacific.
func TestCLIAgainstCeph(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	needCephCLI(t)
	bin := binary(t)
	g := []string{"-c", cl.Conf(), "-k", cl.Keyring()}

	cephFSID, _, code := run(t, "ceph", "-c", cl.Conf(), "fsid")
	if code != 0 {
		t.Fatalf("ceph fsid: exit %d", code)
	}
	ourFSID, stderr, code := run(t, bin, append(g, "mon-command", `{"prefix":"fsid"}`)...)
	if code != 0 || strings.TrimSpace(ourFSID) != strings.TrimSpace(cephFSID) {
		t.Errorf("fsid: ours %q (exit %d, %s), ceph %q", ourFSID, code, stderr, cephFSID)
	}

	cephJSON, _, _ := run(t, "ceph", "-c", cl.Conf(), "-s", "-f", "json")
	var want struct {
		FSID   string                  `json:"fsid"`
		Health struct{ Status string } `json:"health"`
	}
	if err := json.Unmarshal([]byte(cephJSON), &want); err != nil {
		t.Fatalf("ceph -s -f json: %v", err)
	}
	status, stderr, code := run(t, bin, append(g, "status")...)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, stderr)
	}
	for _, line := range []string{"id:     " + want.FSID, "health: " + want.Health.Status} {
		if !strings.Contains(status, line) {
			t.Errorf("status output lacks %q:\n%s", line, status)
		}
	}
	for _, section := range []string{"services:", "mon: 1 daemons, quorum a", "osd: 1 osds: 1 up", "pools:", "pgs:"} {
		if !strings.Contains(status, section) {
			t.Errorf("status output lacks %q:\n%s", section, status)
		}
	}
	js, _, code := run(t, bin, append(g, "status", "-f", "json")...)
	var got struct{ FSID string }
	if code != 0 || json.Unmarshal([]byte(js), &got) != nil || got.FSID != want.FSID {
		t.Errorf("status -f json: exit %d, %q", code, js)
	}

	// Failure: same text as the ceph CLI, exit code = errno.
	_, cephErr, _ := run(t, "ceph", "-c", cl.Conf(), "osd", "pool", "get", "no-such-pool", "size")
	_, ourErr, code := run(t, bin, append(g, "mon-command", `{"prefix":"osd pool get","pool":"no-such-pool","var":"size"}`)...)
	if code != 2 {
		t.Errorf("exit code %d, want 2 (ENOENT)", code)
	}
	if !strings.Contains(ourErr, "Error ENOENT: unrecognized pool 'no-such-pool'") ||
		!strings.Contains(cephErr, "unrecognized pool 'no-such-pool'") {
		t.Errorf("error text: ours %q, ceph %q", ourErr, cephErr)
	}
}

// TestCLIMonCommandFiles sends input from a file (-i) and writes output
// to a file (-o) through config-key set/get.
func TestCLIMonCommandFiles(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	g := []string{"-c", cl.Conf(), "-k", cl.Keyring()}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	payload := []byte("csi-gorbd \x00\x01 binary payload\n")
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "csi-gorbd/test/mon-command"
	if _, e, code := run(t, bin, append(g, "mon-command", `{"prefix":"config-key set","key":"`+key+`"}`, "-i", in)...); code != 0 {
		t.Fatalf("config-key set: exit %d: %s", code, e)
	}
	t.Cleanup(func() { run(t, bin, append(g, "mon-command", `{"prefix":"config-key rm","key":"`+key+`"}`)...) })
	if _, e, code := run(t, bin, append(g, "mon-command", `{"prefix":"config-key get","key":"`+key+`"}`, "-o", out)...); code != 0 {
		t.Fatalf("config-key get: exit %d: %s", code, e)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, payload) {
		t.Errorf("round trip: %q (%v), want %q", got, err, payload)
	}
	// Wrong credentials: non-zero exit with a permission error, no hang.
	_, e, code := run(t, bin, "-m", cl.Get("CEPH_MON_V2"), "--id", "admin", "--key", "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==",
		"--connect-timeout", "10s", "mon-command", `{"prefix":"fsid"}`)
	if code == 0 || !strings.Contains(e, "permission denied") {
		t.Errorf("wrong key: exit %d, %q", code, e)
	}
}
