// Package cephtest finds the throw-away Ceph clusters started by
// test/cluster for integration tests.
//
// Each cluster lives in $GORBD_CLUSTERS (default /var/tmp/gorbd/clusters)
// under its own name (pacific, pacific3, reef, tentacle, tentacle256, ...)
// with a cluster.env file of KEY=VALUE lines written by the start script.
//
// When a cluster is missing a test is skipped on a developer machine, but
// fails when GORBD_REQUIRE_CLUSTERS=1 or CI is set, so a required suite can
// never silently skip in CI.
package cephtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Cluster is one started test cluster.
type Cluster struct {
	Name string
	Dir  string
	Env  map[string]string
}

// Get returns a value from cluster.env ("" if absent).
func (c *Cluster) Get(key string) string { return c.Env[key] }

// Conf returns the ceph.conf path.
func (c *Cluster) Conf() string { return c.Env["CEPH_CONF"] }

// Keyring returns the client.admin keyring path.
func (c *Cluster) Keyring() string { return c.Env["CEPH_KEYRING"] }

// Dir returns the directory that holds the clusters.
func Dir() string {
	if d := os.Getenv("GORBD_CLUSTERS"); d != "" {
		return d
	}
	return "/var/tmp/gorbd/clusters"
}

// Required reports whether missing clusters must fail tests instead of skipping them.
func Required() bool {
	return os.Getenv("GORBD_REQUIRE_CLUSTERS") == "1" || os.Getenv("CI") != ""
}

// Load reads the named cluster's env file without a testing.T.
func Load(name string) (*Cluster, error) {
	dir := filepath.Join(Dir(), name)
	f, err := os.Open(filepath.Join(dir, "cluster.env"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return &Cluster{Name: name, Dir: dir, Env: env}, nil
}

// Need returns the named cluster, or skips (locally) / fails (CI) the test.
func Need(t testing.TB, name string) *Cluster {
	t.Helper()
	c, err := Load(name)
	if err != nil {
		if Required() {
			t.Fatalf("cluster %q is required but not available: %v (start it with test/cluster/start.sh %s)", name, err, name)
		}
		t.Skipf("cluster %q not started (test/cluster/start.sh %s): %v", name, name, err)
	}
	return c
}

// All lists the single-monitor clusters that every version-matrix test runs
// against, in a stable order.
func All() []string {
	return []string{"pacific", "reef", "tentacle", "tentacle256"}
}

// Missing reports a missing prerequisite: it skips the test on a developer
// machine and fails it when clusters are required (CI), so a required suite
// never passes by skipping.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
