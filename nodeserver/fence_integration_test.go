package nodeserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// The Ceph side of one writer per volume, on the host (the kernel side,
// with mounts, SIGSTOP and fsck, runs in the VM: test/vm/guest
// csi_fence_test.go). Two node servers with their own node ids and state
// directories open one image the way NodeStageVolume does (openVolume,
// the attach manager's factory).

type fenceEnv struct {
	t     *testing.T
	ctx   context.Context
	admin *rados.Conn
	io    *rados.IOContext
	mon   string
	key   string
}

func newFenceEnv(t *testing.T) *fenceEnv {
	t.Helper()
	c := cephtest.Need(t, "pacific")
	mon, key, pool := c.Get("CEPH_MON_V2"), c.Get("CEPH_ADMIN_KEY"), c.Get("CEPH_POOL")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	admin, err := rados.Connect(ctx, rados.Config{Monitors: []string{mon}, User: "admin", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	io, err := admin.OpenIOContext(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	return &fenceEnv{t: t, ctx: ctx, admin: admin, io: io, mon: mon, key: key}
}

func (e *fenceEnv) image(features uint64) string {
	e.t.Helper()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	name := "nstest-fence-" + hex.EncodeToString(rb[:])
	if _, err := rbd.Create(e.ctx, e.io, name, 8<<20, &rbd.CreateOptions{Features: features}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { removeImage(e.t, e.io, name) })
	return name
}

// node is a node server with its own node id and state directory.
func (e *fenceEnv) node(id string) *Server {
	e.t.Helper()
	s, err := New(e.ctx, Options{NodeID: id, StateDir: e.t.TempDir(),
		Clusters: map[string]csiceph.ClusterInfo{"c": {ClusterID: "c", Monitors: []string{e.mon}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return s
}

// stage records the volume on s as NodeStageVolume does and opens it.
func (e *fenceEnv) stage(s *Server, image string, mode csi.VolumeCapability_AccessMode_Mode) (nbd.Backend, error) {
	e.t.Helper()
	vid := csiceph.VolumeID{ClusterID: "c", PoolID: e.io.PoolID(), Image: image}.String()
	rec := &volumeRecord{Version: volumeRecordVersion, VolumeID: vid, ClusterID: "c", PoolID: e.io.PoolID(),
		Image: image, UserID: "admin", UserKey: e.key, StagingPath: "/staging", AccessMode: int32(mode),
		ReadOnly: csiceph.ReadOnlyMode(mode)}
	if err := s.vols.save(rec); err != nil {
		e.t.Fatal(err)
	}
	return s.openVolume(e.ctx, vid, rec.ReadOnly)
}

// withdraw writes what ControllerUnpublish(from) + ControllerPublish(to)
// leave in the image's metadata.
func (e *fenceEnv) withdraw(image, from, to string) {
	e.t.Helper()
	img, err := rbd.Open(e.ctx, e.io, image, &rbd.OpenOptions{NoWatch: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer img.Close(e.ctx)
	a := &csiceph.Attachments{}
	snw := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if _, err := a.Publish(from, snw, false); err != nil {
		e.t.Fatal(err)
	}
	a.Unpublish(from, time.Now())
	if _, err := a.Publish(to, snw, false); err != nil {
		e.t.Fatal(err)
	}
	if err := csiceph.WriteAttachments(e.ctx, img, a); err != nil {
		e.t.Fatal(err)
	}
}

func (e *fenceEnv) stages(image string) []csiceph.Stage {
	e.t.Helper()
	img, err := rbd.Open(e.ctx, e.io, image, &rbd.OpenOptions{NoWatch: true, ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer img.Close(e.ctx)
	u, err := csiceph.ReadUsers(e.ctx, img)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Stages
}

// blocklisted reports whether client gid's address is on the blocklist
// (`ceph osd blocklist ls`), from its watch or lock address's nonce.
func (e *fenceEnv) blocklisted(nonce uint32) bool {
	e.t.Helper()
	out, st, err := e.admin.MonCommand(e.ctx, `{"prefix":"osd blocklist ls","format":"json"}`, nil)
	if err != nil {
		e.t.Fatalf("osd blocklist ls: %v %s", err, st)
	}
	var list []struct {
		Addr string `json:"addr"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&list); err != nil {
		e.t.Fatalf("osd blocklist ls: %v: %s", err, out)
	}
	for _, b := range list {
		if strings.HasSuffix(b.Addr, fmt.Sprintf("/%d", nonce)) {
			return true
		}
	}
	return false
}

// TestSingleWriterAndFencing, for an image with and without the
// exclusive-lock feature: a writable single-node stage on node A keeps B
// out (FailedPrecondition naming A's client and node), readers and
// multi-node block writers are not affected by the rule, a withdrawn A is
// blocklisted by B's stage at once and its next write fails for good, and
// after a clean unstage B stages without fencing anybody.
func TestSingleWriterAndFencing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features uint64
	}{
		{"exclusive-lock", rbd.FeaturesDefault},
		{"no-exclusive-lock", rbd.FeatureLayering},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFenceEnv(t)
			snw := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
			image := e.image(tc.features)
			a, b := e.node("node-a"), e.node("node-b")

			va, err := e.stage(a, image, snw)
			if err != nil {
				t.Fatalf("A's stage: %v", err)
			}
			if err := va.WriteAt(e.ctx, []byte("A was here"), 0, true); err != nil {
				t.Fatal(err)
			}
			st := e.stages(image)
			if len(st) != 1 || st[0].Node != "node-a" {
				t.Fatalf("stage records after A's stage: %+v", st)
			}
			aClient := st[0].Client
			nonce := e.watcherNonce(image, aClient)

			for _, m := range []csi.VolumeCapability_AccessMode_Mode{snw,
				csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
				csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER} {
				_, err := e.stage(b, image, m)
				if csiceph.Code(err) != codes.FailedPrecondition {
					t.Fatalf("B's %v stage while A holds it: %v (code %v), want FailedPrecondition", m, err, csiceph.Code(err))
				}
				if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("client.%d", aClient)) || !strings.Contains(msg, `node "node-a"`) {
					t.Fatalf("refusal does not name A's client and node: %v", err)
				}
			}
			// A reader is not a writer: it opens (read-only) as before.
			vr, err := e.stage(b, image, csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)
			if err != nil {
				t.Fatalf("B's reader stage: %v", err)
			}
			vr.(*rbdVolume).Close()

			// The CO takes the volume from A (force-detach) and gives it to
			// B: B's stage fences A at once, long before A's watch would
			// time out.
			e.withdraw(image, "node-a", "node-b")
			start := time.Now()
			vb, err := e.stage(b, image, snw)
			if err != nil {
				t.Fatalf("B's stage after A was withdrawn: %v", err)
			}
			took := time.Since(start)
			if st := e.stages(image); len(st) != 1 || st[0].Node != "node-b" {
				t.Errorf("stage records after B took over: %+v, want B's only (A's client is fenced)", st)
			}
			if err := vb.WriteAt(e.ctx, []byte("B took over"), 0, true); err != nil {
				t.Fatalf("B's write: %v", err)
			}
			if !e.blocklisted(nonce) {
				t.Errorf("A's client.%d (nonce %d) is not in osd blocklist ls", aClient, nonce)
			}
			err = va.WriteAt(e.ctx, []byte("A wakes up"), 0, true)
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("A's write after the takeover: %v, want EIO", err)
			}
			if err := va.ReadAt(e.ctx, make([]byte, 4), 0); !errors.Is(err, syscall.EIO) {
				t.Errorf("A's read after the takeover: %v, want EIO", err)
			}
			got := make([]byte, 11)
			if err := vb.ReadAt(e.ctx, got, 0); err != nil || string(got) != "B took over" {
				t.Fatalf("B reads %q %v", got, err)
			}
			t.Logf("B staged %v after A's withdrawal; A (client.%d) blocklisted, its write: %v", took.Round(time.Millisecond), aClient, err)

			// A clean hand-over: B unstages (closes), A' (a new node)
			// stages without fencing B.
			vb.(*rbdVolume).Close()
			if err := b.forgetStage(e.ctx, mustLoad(t, b, image, e)); err != nil {
				t.Fatal(err)
			}
			c := e.node("node-c")
			vc, err := e.stage(c, image, snw)
			if err != nil {
				t.Fatalf("C's stage after B unstaged: %v", err)
			}
			if err := vc.WriteAt(e.ctx, []byte("C"), 0, true); err != nil {
				t.Fatal(err)
			}
			vc.(*rbdVolume).Close()
			if st := e.stages(image); len(st) != 1 || st[0].Node != "node-c" {
				t.Errorf("stage records: %+v, want C's only", st)
			}
		})
	}
}

func mustLoad(t *testing.T, s *Server, image string, e *fenceEnv) *volumeRecord {
	t.Helper()
	rec, err := s.vols.load(csiceph.VolumeID{ClusterID: "c", PoolID: e.io.PoolID(), Image: image}.String())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// watcherNonce is the address nonce of client gid's watch on the
// image's header.
func (e *fenceEnv) watcherNonce(image string, gid int64) uint32 {
	e.t.Helper()
	img, err := rbd.Open(e.ctx, e.io, image, &rbd.OpenOptions{NoWatch: true, ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer img.Close(e.ctx)
	ws, err := img.Watchers(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, w := range ws {
		if w.Entity.Num == gid {
			return w.Addr.Nonce
		}
	}
	e.t.Fatalf("client.%d does not watch %s: %+v", gid, image, ws)
	return 0
}

// TestRotatedKeyRewritesRecord: a staged volume whose node-stage secrets
// changed (a rotated key, another user) gets its record rewritten at the
// next NodeStageVolume, after the new secrets connect, so that a
// restarted plugin reopens the image with them; secrets that do not
// connect leave the record as it was and fail the call.
func TestRotatedKeyRewritesRecord(t *testing.T) {
	e := newFenceEnv(t)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	user := "client.nstest-rot-" + hex.EncodeToString(rb[:])
	out, st, err := e.admin.MonCommand(e.ctx, fmt.Sprintf(`{"prefix":"auth get-or-create","entity":%q,"caps":["mon","profile rbd","osd","profile rbd"],"format":"json"}`, user), nil)
	if err != nil {
		t.Fatalf("auth get-or-create: %v %s", err, st)
	}
	t.Cleanup(func() {
		_, _, _ = e.admin.MonCommand(context.Background(), fmt.Sprintf(`{"prefix":"auth rm","entity":%q}`, user), nil)
	})
	var ents []struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(out, &ents); err != nil || len(ents) != 1 {
		t.Fatalf("auth get-or-create: %v %s", err, out)
	}
	newKey := ents[0].Key
	id := strings.TrimPrefix(user, "client.")

	image := e.image(rbd.FeaturesDefault)
	s := e.node("node-r")
	v, err := e.stage(s, image, csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	if err != nil {
		t.Fatal(err)
	}
	v.(*rbdVolume).Close()
	rec := mustLoad(t, s, image, e)

	if err := s.rotateCredentials(e.ctx, rec, map[string]string{"userID": "admin", "userKey": e.key}); err != nil {
		t.Fatalf("same secrets: %v", err)
	}
	bad := map[string]string{"userID": id, "userKey": "AQAAAAAAAAAAABAAAAAAAAAAAAAAAAAAAAAAAA=="}
	if err := s.rotateCredentials(e.ctx, rec, bad); err == nil {
		t.Fatal("secrets that do not connect were accepted")
	}
	if got := mustLoad(t, s, image, e); got.UserID != "admin" || got.UserKey != e.key {
		t.Fatalf("record after refused secrets: user %q", got.UserID)
	}
	if err := s.rotateCredentials(e.ctx, rec, map[string]string{"userID": id, "userKey": newKey}); err != nil {
		t.Fatalf("rotated secrets: %v", err)
	}
	got := mustLoad(t, s, image, e)
	if got.UserID != id || got.UserKey != newKey {
		t.Fatalf("record after rotation: user %q", got.UserID)
	}
	// What a restarted plugin does with the record: open with it.
	v, err = s.openVolume(e.ctx, got.VolumeID, false)
	if err != nil {
		t.Fatalf("reopening with the rotated record: %v", err)
	}
	defer v.(*rbdVolume).Close()
	if st := e.stages(image); len(st) != 1 || st[0].Node != "node-r" {
		t.Fatalf("stage records: %+v", st)
	}
}

// removeImage removes a test image, waiting (up to a minute) for the
// header watches of clients a test killed or fenced to go: until the OSD
// drops them, removal answers ErrBusy and the image would be left behind.
func removeImage(t *testing.T, io *rados.IOContext, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		err := rbd.Remove(ctx, io, name)
		if err == nil || errors.Is(err, rbd.ErrNotFound) {
			return
		}
		if !errors.Is(err, rbd.ErrBusy) || ctx.Err() != nil {
			t.Errorf("removing test image %s: %v", name, err)
			return
		}
		time.Sleep(2 * time.Second)
	}
}
