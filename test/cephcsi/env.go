package cephcsi

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
)

// ReplayEnv is a captured ceph-csi state replayed into fresh pools of a
// test cluster, for tests that take its volumes over.
type ReplayEnv struct {
	Cluster  *cephtest.Cluster
	Conn     *rados.Conn
	CLI      *CLI
	State    *State
	Replayed *Replayed
}

// NewReplayEnv replays testdata/<version>/state.json into new pools on the
// named cluster (removed when the test ends) and returns where it went.
// testdata is the path of this package's testdata directory as seen from
// the calling test.
func NewReplayEnv(t testing.TB, cluster, testdata, version string) *ReplayEnv {
	t.Helper()
	cl := cephtest.Need(t, cluster)
	if err := HaveCLI(); err != nil {
		cephtest.Missing(t, "%v", err)
	}
	st, err := LoadState(filepath.Join(testdata, version, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := &CLI{Conf: cl.Conf(), Keyring: cl.Keyring()}
	prefix := fmt.Sprintf("ccsirp%x", rand.Uint32())
	pools := map[string]string{}
	for _, p := range st.Layout.Pools {
		target := prefix + strings.TrimPrefix(p.Name, "ccsi-cc")
		pools[p.Name] = target
		if _, err := cli.Ceph(ctx, "osd", "pool", "create", target, "8"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = cli.Ceph(context.Background(), "osd", "pool", "rm", target, target, "--yes-i-really-really-mean-it")
		})
		if _, err := cli.RBD(ctx, "pool", "init", target); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	start := time.Now()
	r, err := Replay(ctx, conn, st, pools)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replayed %d images and %d journal objects of ceph-csi %s into %s in %v",
		len(st.Layout.Images), len(st.Layout.Objects), version, cluster, time.Since(start).Round(time.Millisecond))
	return &ReplayEnv{Cluster: cl, Conn: conn, CLI: cli, State: st, Replayed: r}
}
