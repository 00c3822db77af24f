package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binaries the suite starts, all from GORBD_E2E_BINS.
var neededBins = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl",
	"csi-provisioner", "csi-snapshotter", "snapshot-controller", "csi-resizer", "csi-attacher"}

// binsDir returns the directory build-bins.sh printed, skipping the test when
// GORBD_E2E_BINS is unset (so a plain `go test ./...` passes by) and failing
// when it is set but incomplete.
func binsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GORBD_E2E_BINS")
	if dir == "" {
		t.Skip("GORBD_E2E_BINS unset: run GORBD_E2E_BINS=$(bash test/e2e/build-bins.sh) go test ./test/e2e/")
	}
	for _, b := range neededBins {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("GORBD_E2E_BINS=%s lacks %s (run test/e2e/build-bins.sh): %v", dir, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "crd")); err != nil {
		t.Fatalf("GORBD_E2E_BINS=%s lacks the snapshot CRDs: %v", dir, err)
	}
	return dir
}

// helmPath finds helm in PATH or $(go env GOPATH)/bin (test/tools.sh).
func helmPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	dirs := []string{os.Getenv("GOBIN")}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, gp := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "helm")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatal("helm not found: run test/tools.sh")
	return ""
}

// pluginBinary returns GORBD_BIN or builds ./cmd/csi-gorbd (static) into dir.
func pluginBinary(t *testing.T, dir string) string {
	t.Helper()
	if p := os.Getenv("GORBD_BIN"); p != "" {
		return p
	}
	out := filepath.Join(dir, "csi-gorbd")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/csi-gorbd")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building csi-gorbd: %v\n%s", err, b)
	}
	return out
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one started daemon with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// procs starts daemons and stops them in reverse order, so the apiserver
// never outlives etcd and the sidecars never outlive the apiserver.
type procs struct {
	dir  string
	list []*proc
}

func (ps *procs) start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	return ps.startEnv(t, name, nil, bin, args...)
}

// startEnv is start with env added to the test's environment.
func (ps *procs) startEnv(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(ps.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.list = append(ps.list, p)
	return p
}

// alive reports an error if the process has exited.
func (p *proc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v (log %s)", p.name, p.err, p.log)
	default:
		return nil
	}
}

func (ps *procs) stopAll() {
	for i := len(ps.list) - 1; i >= 0; i-- {
		p := ps.list[i]
		if p.alive() != nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// dumpLogs writes the tail of every log into the test output.
func (ps *procs) dumpLogs(t *testing.T, lines int) {
	for _, p := range ps.list {
		b, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		t.Logf("---- %s (last %d lines of %s)\n%s", p.name, len(all), p.log, strings.Join(all, "\n"))
	}
}

// errPending is returned by poll conditions that are not met yet; anything
// else returned with ok=false is kept as the reason shown on timeout.
var errPending = errors.New("not yet")

// waitFor polls cond until it reports true or ctx (given a deadline of d)
// ends; on timeout it fails the test with what and the last reason.
func waitFor(ctx context.Context, t *testing.T, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s: last: %v", d, what, last)
		case <-tick.C:
		}
	}
}

// run executes a command and returns its stdout, or an error carrying stderr.
func run(ctx context.Context, stdin []byte, env []string, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
