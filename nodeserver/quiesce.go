package nodeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/rbdbackend"
	"github.com/csi-gorbd/csi-gorbd/internal/records"
)

// Snapshots of served volumes are consistent: when a snapshot asks the
// image's users to quiesce (the controller's CreateSnapshot and
// CreateVolumeGroupSnapshot, `rbd snap create`, `rbd group snap
// create`), a staged filesystem is frozen (FIFREEZE on the staging
// mount: its dirty data and journal are flushed through the device, which
// still serves), then the device's NBD export holds new requests and
// waits for those at the image; after the snapshot the export lets them
// go and the filesystem is thawed. Block volumes are paused only.
//
// The freeze always ends: on UNQUIESCE, when the snapshotter falls silent
// for the hold time (rbd's QuiesceHooks.Hold), when the image closes, at
// the latest maxFrozen after it began, and — if this process dies frozen —
// at the next start: a marker in frozen/ is written before every freeze
// and the volume's next open thaws what it names.

const (
	// freezeTimeout bounds FIFREEZE, which syncs the filesystem through
	// the device; a freeze that returns later is undone at once.
	freezeTimeout = 30 * time.Second
	// maxFrozen thaws a filesystem whatever happened to the snapshot.
	maxFrozen = 2 * time.Minute
)

// Freezer freezes and thaws a mounted filesystem (the real one uses
// FIFREEZE and FITHAW).
type Freezer interface {
	Freeze(path string) error
	Thaw(path string) error
}

// frozenRecord is a marker in frozen/: the filesystem at Path was being
// frozen or is frozen for a snapshot.
type frozenRecord struct {
	VolumeID string `json:"volumeID"`
	Path     string `json:"path"`
}

// freezes are the filesystems this process has frozen, by volume id.
type freezes struct {
	mu     sync.Mutex
	frozen map[string]*frozenFS
}

type frozenFS struct {
	path     string
	watchdog *time.Timer
}

func (s *Server) frozenDir() records.Dir {
	return records.Dir{Path: filepath.Join(s.o.StateDir, "frozen"), MaxSize: maxRecordSize}
}

func (s *Server) freezer() Freezer {
	if s.o.Freezer != nil {
		return s.o.Freezer
	}
	return fsFreezer{}
}

// enableQuiesce makes a freshly opened volume answer quiesce requests,
// after thawing what a previous process may have left frozen.
func (s *Server) enableQuiesce(v *rbdVolume) {
	id := v.id
	s.thawLeftover(id)
	v.EnableQuiesce(rbdbackend.Quiesce{
		Freeze: func(ctx context.Context) error { return s.freeze(ctx, id) },
		Thaw:   func(context.Context) { s.thaw(id) },
		Hold:   s.o.QuiesceHold,
	})
}

// freeze freezes the volume's staged filesystem, if it has one mounted.
func (s *Server) freeze(ctx context.Context, volID string) error {
	rec, err := s.vols.load(volID)
	if err != nil {
		return nil // not staged (yet, or any more): nothing mounted to freeze
	}
	if rec.Block || rec.ReadOnly || rec.Foreign != "" {
		return nil
	}
	path := rec.StagingPath
	if mounted, err := s.isMountPoint(path); err != nil || !mounted {
		return nil
	}
	if err := s.frozenDir().WriteJSON(recordFile(volID), frozenRecord{VolumeID: volID, Path: path}); err != nil {
		return fmt.Errorf("recording the freeze of %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	fr := s.freezer()
	go func() { done <- fr.Freeze(path) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The ioctl cannot be interrupted: undo it whenever it returns.
		go func() {
			if <-done == nil {
				_ = fr.Thaw(path)
			}
			_ = s.frozenDir().Remove(recordFile(volID))
		}()
		s.report(volID, "freeze", time.Since(start), ctx.Err())
		return fmt.Errorf("freezing %s: %w", path, syscall.ETIMEDOUT)
	}
	switch {
	case errors.Is(err, syscall.EBUSY):
		// Frozen already, by someone else (fsfreeze -f): not ours to thaw.
		_ = s.frozenDir().Remove(recordFile(volID))
		s.report(volID, "freeze (frozen already)", time.Since(start), nil)
		return nil
	case errors.Is(err, syscall.EOPNOTSUPP):
		_ = s.frozenDir().Remove(recordFile(volID))
		s.report(volID, "freeze (not supported: the device is paused only)", time.Since(start), nil)
		return nil
	case err != nil:
		_ = s.frozenDir().Remove(recordFile(volID))
		s.report(volID, "freeze", time.Since(start), err)
		return fmt.Errorf("freezing %s: %w", path, err)
	}
	f := &frozenFS{path: path}
	f.watchdog = time.AfterFunc(maxFrozen, func() { s.thaw(volID) })
	s.fz.mu.Lock()
	if s.fz.frozen == nil {
		s.fz.frozen = map[string]*frozenFS{}
	}
	s.fz.frozen[volID] = f
	s.fz.mu.Unlock()
	s.report(volID, "freeze", time.Since(start), nil)
	return nil
}

// thaw thaws the volume's filesystem if this process froze it.
func (s *Server) thaw(volID string) {
	s.fz.mu.Lock()
	f := s.fz.frozen[volID]
	delete(s.fz.frozen, volID)
	s.fz.mu.Unlock()
	if f == nil {
		return
	}
	f.watchdog.Stop()
	err := s.freezer().Thaw(f.path)
	if errors.Is(err, syscall.EINVAL) {
		err = nil // not frozen (any more)
	}
	if err == nil {
		_ = s.frozenDir().Remove(recordFile(volID))
	}
	s.report(volID, "thaw", 0, err)
}

// thawLeftover thaws a filesystem a previous process left frozen (its
// marker is still there).
func (s *Server) thawLeftover(volID string) {
	var rec frozenRecord
	b, err := s.frozenDir().Read(recordFile(volID))
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return
	}
	if json.Unmarshal(b, &rec) != nil || rec.VolumeID != volID {
		_ = s.frozenDir().Remove(recordFile(volID))
		return
	}
	err = s.freezer().Thaw(rec.Path)
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err == nil {
		_ = s.frozenDir().Remove(recordFile(volID))
	}
	s.report(volID, "thaw of a freeze left by a previous process", 0, err)
}

func (s *Server) report(volID, what string, d time.Duration, err error) {
	if s.o.OnQuiesce != nil {
		s.o.OnQuiesce(volID, what, d, err)
	}
}
