package nodeserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/mount-utils"
)

// fakeFreezer records freezes and thaws; block, when set, holds Freeze
// until closed.
type fakeFreezer struct {
	mu     sync.Mutex
	calls  []string
	err    error
	block  chan struct{}
	frozen map[string]bool
}

func (f *fakeFreezer) Freeze(path string) error {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "freeze "+path)
	if f.err != nil {
		return f.err
	}
	if f.frozen == nil {
		f.frozen = map[string]bool{}
	}
	f.frozen[path] = true
	return nil
}

func (f *fakeFreezer) Thaw(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "thaw "+path)
	if !f.frozen[path] {
		return syscall.EINVAL
	}
	delete(f.frozen, path)
	return nil
}

func (f *fakeFreezer) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// stagedFS records a staged, mounted filesystem volume.
func stagedFS(t *testing.T, s *Server, fm *mount.FakeMounter, image string, block bool) (string, string) {
	t.Helper()
	id := volID(image)
	staging := filepath.Join(t.TempDir(), "staging")
	os.MkdirAll(staging, 0o750)
	rec := &volumeRecord{VolumeID: id, ClusterID: testCluster, PoolID: 2, Image: image, StagingPath: staging,
		Device: "/dev/nbd0", Block: block, FSType: "ext4", UserID: "admin", UserKey: "k"}
	if err := s.vols.save(rec); err != nil {
		t.Fatal(err)
	}
	if !block {
		fm.MountPoints = append(fm.MountPoints, mount.MountPoint{Device: "/dev/nbd0", Path: staging, Type: "ext4"})
	}
	return id, staging
}

func markerExists(s *Server, id string) bool {
	_, err := os.Stat(filepath.Join(s.frozenDir().Path, recordFile(id)))
	return err == nil
}

func newQuiesceServer(t *testing.T) (*Server, *mount.FakeMounter, *fakeFreezer) {
	s, fm := newTestServer(t)
	f := &fakeFreezer{}
	s.o.Freezer = f
	return s, fm, f
}

func TestFreezeThaw(t *testing.T) {
	s, fm, f := newQuiesceServer(t)
	id, staging := stagedFS(t, s, fm, "img1", false)
	if err := s.freeze(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if !markerExists(s, id) {
		t.Fatal("no marker while frozen")
	}
	s.thaw(id)
	if got := f.seen(); !slices.Equal(got, []string{"freeze " + staging, "thaw " + staging}) {
		t.Fatalf("calls %v", got)
	}
	if markerExists(s, id) {
		t.Fatal("marker left after the thaw")
	}
	s.thaw(id) // not frozen: nothing
	if n := len(f.seen()); n != 2 {
		t.Fatalf("a second thaw called the freezer: %v", f.seen())
	}
}

// Block volumes, unstaged volumes and unmounted staging paths are not
// frozen (the export is paused only).
func TestFreezeNothingMounted(t *testing.T) {
	s, fm, f := newQuiesceServer(t)
	blockID, _ := stagedFS(t, s, fm, "blk", true)
	fsID, staging := stagedFS(t, s, fm, "fs", false)
	fm.MountPoints = nil
	for _, id := range []string{blockID, fsID, volID("unstaged")} {
		if err := s.freeze(context.Background(), id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if got := f.seen(); len(got) != 0 {
		t.Fatalf("froze %v (staging %s)", got, staging)
	}
}

// A filesystem frozen by someone else stays theirs; one that cannot
// freeze is paused only; other errors fail the quiesce.
func TestFreezeErrors(t *testing.T) {
	s, fm, f := newQuiesceServer(t)
	id, _ := stagedFS(t, s, fm, "img", false)
	for _, tc := range []struct {
		err  error
		fail bool
	}{{syscall.EBUSY, false}, {syscall.EOPNOTSUPP, false}, {syscall.EIO, true}} {
		f.err = tc.err
		err := s.freeze(context.Background(), id)
		if (err != nil) != tc.fail {
			t.Fatalf("Freeze failing with %v: %v", tc.err, err)
		}
		if markerExists(s, id) {
			t.Fatalf("%v: marker left", tc.err)
		}
		s.thaw(id)
	}
	for _, c := range f.seen() {
		if c[:4] == "thaw" {
			t.Fatalf("thawed what was not ours: %v", f.seen())
		}
	}
}

// A freeze that hangs past its deadline fails the quiesce, and is undone
// when it finally returns.
func TestFreezeTimeout(t *testing.T) {
	s, fm, f := newQuiesceServer(t)
	id, staging := stagedFS(t, s, fm, "img", false)
	f.block = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.freeze(ctx, id); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("hung freeze: %v", err)
	}
	close(f.block)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(f.seen(), []string{"freeze " + staging, "thaw " + staging}) || markerExists(s, id) {
		if time.Now().After(deadline) {
			t.Fatalf("late freeze not undone: %v, marker %v", f.seen(), markerExists(s, id))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A marker left by a process that died frozen is thawed at the volume's
// next open.
func TestThawLeftover(t *testing.T) {
	s, fm, f := newQuiesceServer(t)
	id, staging := stagedFS(t, s, fm, "img", false)
	if err := s.freeze(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	// The process dies: its memory of the freeze goes, the marker stays.
	s.fz.frozen = nil
	s.thawLeftover(id)
	if got := f.seen(); !slices.Equal(got, []string{"freeze " + staging, "thaw " + staging}) || markerExists(s, id) {
		t.Fatalf("calls %v, marker %v", got, markerExists(s, id))
	}
}
