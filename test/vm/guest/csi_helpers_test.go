package guest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// csiPath puts the util-linux tools run.sh copies into /sbin (blkid,
// fsck, mount, umount) ahead of busybox's applets in /bin: mount-utils
// needs blkid's -p/-s/-o export and fsck's exit codes.
const csiPath = "/sbin:/usr/sbin:/bin:/usr/bin"

// csiSetup is what a CSI test needs to run the plugin against the host
// cluster: a clusters file, secrets in ceph-csi's shape, unique names.
type csiSetup struct {
	Ceph      *hostCeph
	Dir       string
	Clusters  string // clusters file
	ClusterID string
	Pool      string
	PoolID    int64
	Prefix    string // volume name prefix, unique per run
	Instance  string // journal instance id, unique per run
	Secrets   map[string]string
	IO        *rados.IOContext
}

func csiRandHex() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newCSISetup(t *testing.T, ctx context.Context, c *hostCeph) *csiSetup {
	t.Helper()
	t.Setenv("PATH", csiPath)
	run := csiRandHex()
	s := &csiSetup{
		Ceph:      c,
		Dir:       t.TempDir(),
		ClusterID: "vm-" + c.Cluster,
		Pool:      c.Pool,
		Prefix:    "vmB-csi-" + run + "-",
		Instance:  "vmB-" + run,
		Secrets:   map[string]string{"userID": strings.TrimPrefix(c.User, "client."), "userKey": c.Key},
	}
	b, _ := json.Marshal([]csiceph.ClusterInfo{{ClusterID: s.ClusterID, Monitors: []string{c.MonHost}}})
	s.Clusters = filepath.Join(s.Dir, "clusters.json")
	if err := os.WriteFile(s.Clusters, b, 0o600); err != nil {
		t.Fatal(err)
	}
	conn, err := rados.Connect(ctx, c.Config())
	if err != nil {
		t.Fatalf("connect to the host cluster: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if s.IO, err = conn.OpenIOContext(ctx, s.Pool); err != nil {
		t.Fatal(err)
	}
	s.PoolID = s.IO.PoolID()
	// Registered first, so it runs after every later cleanup (volumes
	// deleted, plugins stopped).
	t.Cleanup(func() { s.checkClean(t, ctx) })
	return s
}

// checkClean fails the test for anything of this run left in the pool
// (images, trash entries, journal keys), then removes it all so a failed
// run does not dirty the shared cluster.
func (s *csiSetup) checkClean(t *testing.T, ctx context.Context) {
	t.Helper()
	ctx = context.WithoutCancel(ctx)
	dir, err := s.IO.GetAllOmapValues(ctx, rbd.DirectoryObject, "name_"+s.Prefix)
	if err != nil {
		t.Errorf("listing %s: %v", rbd.DirectoryObject, err)
	}
	for k := range dir {
		t.Errorf("image left behind: %s", strings.TrimPrefix(k, "name_"))
	}
	if trash, err := rbd.TrashList(ctx, s.IO); err != nil {
		t.Errorf("trash list: %v", err)
	} else {
		for id, e := range trash {
			if strings.HasPrefix(e.Name, s.Prefix) {
				t.Errorf("trash entry left behind: %s (%s)", e.Name, id)
			}
		}
	}
	for _, oid := range []string{controllerserver.VolumeJournalObject(s.Instance), controllerserver.SnapshotJournalObject(s.Instance)} {
		m, err := s.IO.GetAllOmapValues(ctx, oid, "")
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("reading journal %s: %v", oid, err)
		}
		for k := range m {
			t.Errorf("journal %s: key left behind: %s", oid, k)
		}
		_ = s.IO.Remove(ctx, oid)
	}
	for round := 0; round < 3 && len(dir) > 0; round++ {
		for k := range dir {
			name := strings.TrimPrefix(k, "name_")
			if img, err := rbd.Open(ctx, s.IO, name, nil); err == nil {
				for _, si := range img.Stat().Snapshots {
					_ = img.RemoveSnapshot(ctx, si.Name)
				}
				_ = img.Close(ctx)
			}
			_ = rbd.Remove(ctx, s.IO, name)
		}
		dir, _ = s.IO.GetAllOmapValues(ctx, rbd.DirectoryObject, "name_"+s.Prefix)
	}
}

// volumeParams are the StorageClass parameters of this run.
func (s *csiSetup) volumeParams() map[string]string {
	return map[string]string{"clusterID": s.ClusterID, "pool": s.Pool, "volumeNamePrefix": s.Prefix}
}

func writeFile0600(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
