package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// runRoot runs a fresh command tree in this process and returns the tree
// (to read its flags) and what it printed on stderr.
func runRoot(t *testing.T, args ...string) (*rootFlags, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return &rootFlags{root.PersistentFlags()}, errb.String(), err
}

// rootFlags are the global flags of a tree that ran.
type rootFlags struct{ fs *pflag.FlagSet }

func (r *rootFlags) flag(name string) string { return r.fs.Lookup(name).Value.String() }

// TestCephArgs: CEPH_ARGS adds options as if placed before the command
// line's (which win), in ceph's spellings; options this CLI does not know
// are skipped; a bad value is an error.
func TestCephArgs(t *testing.T) {
	t.Setenv("CEPH_ARGS", "--id envuser --mon_host 10.1.2.3 --debug-ms 1 --keyfile /env/key -k /env/keyring")
	r, stderr, err := runRoot(t, "--id", "cliuser", "-k", "/cli/keyring", "version")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"id": "cliuser", "mon-host": "10.1.2.3", "keyfile": "/env/key", "keyring": "/cli/keyring"} {
		if got := r.flag(name); got != want {
			t.Errorf("--%s = %q, want %q", name, got, want)
		}
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("warned without --key: %q", stderr)
	}
	t.Setenv("CEPH_ARGS", "--connect-timeout soon")
	if _, _, err := runRoot(t, "version"); err == nil || !strings.Contains(err.Error(), "CEPH_ARGS") {
		t.Errorf("bad CEPH_ARGS value: %v", err)
	}
}

// TestKeyFlagWarns: --key on the command line still works but warns;
// the same key from CEPH_ARGS does not.
func TestKeyFlagWarns(t *testing.T) {
	const key = "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw=="
	t.Setenv("CEPH_ARGS", "")
	r, stderr, err := runRoot(t, "--key", key, "version")
	if err != nil || r.flag("key") != key || !strings.Contains(stderr, "warning: --key") || !strings.Contains(stderr, "--keyfile") {
		t.Errorf("--key: %v, key %q, stderr %q", err, r.flag("key"), stderr)
	}
	t.Setenv("CEPH_ARGS", "--key "+key)
	r, stderr, err = runRoot(t, "version")
	if err != nil || r.flag("key") != key || strings.Contains(stderr, "warning") {
		t.Errorf("CEPH_ARGS --key: %v, key %q, stderr %q", err, r.flag("key"), stderr)
	}
}

// TestUserKey: the csi client's userKey comes from --key, else --keyfile,
// else the -k keyring's client.<user> entry (a keyring with other
// entities, [mon.] included).
func TestUserKey(t *testing.T) {
	const a, b = "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==", "AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU="
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	os.WriteFile(kf, []byte(b+"\n"), 0o600)
	kr := filepath.Join(dir, "keyring")
	os.WriteFile(kr, []byte("[mon.]\n\tkey = "+a+"\n\tcaps mon = \"allow *\"\n[client.k8s]\n\tkey = "+b+"\n"), 0o600)
	for _, c := range []struct {
		f    cephFlags
		want string
	}{
		{cephFlags{key: a, keyfile: kf, keyring: kr}, a},
		{cephFlags{keyfile: kf, keyring: kr}, b},
		{cephFlags{keyring: kr}, b},
	} {
		if got, err := c.f.userKey("k8s"); err != nil || got != c.want {
			t.Errorf("%+v: %q, %v; want %q", c.f, got, err, c.want)
		}
	}
	for _, f := range []cephFlags{{}, {keyring: kr, id: "x"}, {keyfile: filepath.Join(dir, "missing")}} {
		if got, err := f.userKey("nobody"); err == nil {
			t.Errorf("%+v: %q, want an error", f, got)
		}
	}
}

// TestKeyfileAgainstCeph: with --keyfile (or CEPH_ARGS naming it) the CLI
// connects with the key in the file and no key appears in the arguments
// of the running process; a wrong key in the file fails.
func TestKeyfileAgainstCeph(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	bin := binary(t)
	key, mon := cl.Get("CEPH_ADMIN_KEY"), cl.Get("CEPH_MON_HOST")
	if key == "" || mon == "" {
		t.Fatal("cluster.env lacks CEPH_ADMIN_KEY or CEPH_MON_HOST")
	}
	dir := t.TempDir()
	kf := filepath.Join(dir, "admin.key")
	if err := os.WriteFile(kf, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No ceph.conf, no keyring: the key file is the only key there is.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	runEnv := func(extraEnv []string, args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append([]string(nil), env...), extraEnv...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	fsid := `{"prefix":"fsid"}`
	if out, stderr, code := runEnv(nil, "-m", mon, "--keyfile", kf, "mon-command", fsid); code != 0 ||
		strings.TrimSpace(out) != cl.Get("CEPH_FSID") || strings.Contains(stderr, "warning") {
		t.Errorf("--keyfile: exit %d, %q, %s", code, out, stderr)
	}
	if out, stderr, code := runEnv([]string{"CEPH_ARGS=-m " + mon + " --keyfile " + kf}, "mon-command", fsid); code != 0 ||
		strings.TrimSpace(out) != cl.Get("CEPH_FSID") {
		t.Errorf("CEPH_ARGS --keyfile: exit %d, %q, %s", code, out, stderr)
	}
	bad := filepath.Join(dir, "wrong.key")
	os.WriteFile(bad, []byte("AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==\n"), 0o600)
	if _, _, code := runEnv(nil, "-m", mon, "--keyfile", bad, "--connect-timeout", "20s", "mon-command", fsid); code == 0 {
		t.Error("a wrong key in the key file connected")
	}

	// A long-running command: its argv (what every user sees) holds no key.
	pool := cl.Get("CEPH_POOL")
	img := fmt.Sprintf("cmdkeyfile-%d", time.Now().UnixNano())
	if _, stderr, code := cephTool(t, cl, "rbd", "create", "--size", "4M", pool+"/"+img); code != 0 {
		t.Fatalf("rbd create: %s", stderr)
	}
	t.Cleanup(func() { cephTool(t, cl, "rbd", "rm", "--no-progress", pool+"/"+img) })
	sock := filepath.Join(dir, "nbd.sock")
	cmd := exec.Command(bin, "-m", mon, "--keyfile", kf, "nbd", "serve", pool+"/"+img, "--listen", "unix:"+sock)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	var c net.Conn
	for i := 0; ; i++ {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if i == 600 {
			t.Fatalf("nbd serve never listened: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond) // polling for the socket of the child process
	}
	c.Close()
	argv, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(argv, []byte(kf)) || bytes.Contains(argv, []byte(key)) || bytes.Contains(argv, []byte(key[:20])) {
		t.Errorf("argv of the serving process: %q", bytes.ReplaceAll(argv, []byte{0}, []byte{' '}))
	}
}
