package rados_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// TestKeyringManySections: a keyring as operators keep them — the mon's
// own [mon.] section, an OSD's [osd.0], client.admin with its caps,
// comments of both kinds — connects as client.admin, picking that entity
// and ignoring the others. The ceph CLI reads the same file as the
// reference. (Pacific runs on the host: its daemons' keyrings are real
// files written by ceph-authtool and ceph-mon.)
func TestKeyringManySections(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	var b strings.Builder
	b.WriteString("# a keyring with several entities, as `ceph auth export` and ceph-authtool write them\n")
	for _, part := range []string{"mon.a/keyring", "osd.0/keyring"} {
		data, err := os.ReadFile(filepath.Join(cl.Dir, part))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
		b.WriteString("; ---- next entity ----\n")
	}
	admin, err := os.ReadFile(cl.Keyring())
	if err != nil {
		t.Fatal(err)
	}
	b.Write(admin)
	text := b.String()
	for _, want := range []string{"[mon.]", "[osd.0]", "[client.admin]", "caps mon = "} {
		if !strings.Contains(text, want) {
			t.Fatalf("composed keyring lacks %q:\n%s", want, redactKeys(text))
		}
	}
	path := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	if _, err := exec.LookPath("ceph"); err == nil && cl.Get("CEPH_CLI") == "" {
		out, err := exec.Command("ceph", "-c", cl.Conf(), "-k", path, "--connect-timeout", "30", "fsid").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != cl.Get("CEPH_FSID") {
			t.Fatalf("the ceph CLI with this keyring: %v\n%s", err, out)
		}
	}
	for _, user := range []string{"", "client.admin", "admin"} {
		c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: path, User: user})
		if got := c.FSID(); got != cl.Get("CEPH_FSID") {
			t.Errorf("user %q: fsid %s, want %s", user, got, cl.Get("CEPH_FSID"))
		}
		health(t, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if c, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: path, User: "client.nobody"}); !errors.Is(err, rados.ErrNoKey) {
		if err == nil {
			c.Close()
		}
		t.Fatalf("an entity the keyring lacks: %v, want ErrNoKey", err)
	}
}

// redactKeys hides key lines of a keyring in test output.
func redactKeys(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, "="); ok && strings.TrimSpace(k) == "key" {
			lines[i] = k + "= <redacted>"
		}
	}
	return strings.Join(lines, "\n")
}
