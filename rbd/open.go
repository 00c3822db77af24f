package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// OpenOptions select how an image is opened.
type OpenOptions struct {
	ReadOnly bool
	Snapshot string // open this user snapshot (read-only)
	// SnapshotID opens the snapshot with this id instead (read-only), of
	// any namespace but the trash: a member's snapshot of a group
	// snapshot, say. Snapshot must be empty.
	SnapshotID uint64
	// Exclusive keeps the exclusive lock once taken, as krbd mapped with
	// "-o exclusive" does: Open fails with ErrBusy while a live client
	// holds it, and requests from other clients are refused (EROFS).
	// Without it the lock is cooperative, as in librbd: taken at Open when
	// free, handed over when another client asks for it, and requested
	// back from the owner on the next write.
	Exclusive bool
	// DeadClients, when set, names clients the caller knows are dead:
	// typically its own previous incarnation (see internal/incarnation).
	// A header lock one of them holds is broken at once (after
	// blocklisting its address) instead of after its watch has timed out
	// on the OSD (osd_client_watch_timeout, 30 s by default).
	DeadClients func(owner entity.NumName) bool
	// LockInBackground takes the exclusive lock at Open (when it is free
	// or its owner dead) on a goroutine of the image's own instead of
	// before Open returns; the first write waits for it. A restarted node
	// plugin hands the kernel its device meanwhile: the lock takeover
	// (blocklisting the dead owner is a monitor commit) overlaps the
	// kernel's wait to re-send. Ignored with Exclusive.
	LockInBackground bool
	// NoWatch registers no header watch: the image does not count as a
	// user of the image (`rbd status` and Watchers do not list it), never
	// takes the exclusive lock (writes that need it fail) and does not
	// follow other clients' header changes (Refresh re-reads it). For
	// short looks at an image that must not disturb its users: its
	// metadata, its lock owner, its watchers (remove and trash use it).
	NoWatch bool
}

// Open opens the image called name.
func Open(ctx context.Context, io *rados.IOContext, name string, opts *OpenOptions) (*Image, error) {
	return open(ctx, newRadosStore(io), name, "", opts)
}

// OpenByID opens an image by id (its name is looked up in the directory;
// an image in the trash has none).
func OpenByID(ctx context.Context, io *rados.IOContext, id string, opts *OpenOptions) (*Image, error) {
	return open(ctx, newRadosStore(io), "", id, opts)
}

// lockOpenTimeout bounds taking the lock in the background
// (LockInBackground).
const lockOpenTimeout = time.Minute

func open(ctx context.Context, s store, name, id string, opts *OpenOptions) (*Image, error) {
	var o OpenOptions
	if opts != nil {
		o = *opts
	}
	if id == "" {
		out, err := s.call(ctx, IDObjectName(name), clsRBD, "get_id", nil)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				return nil, fmt.Errorf("%w: image %q: %w", ErrNotFound, name, err)
			}
			return nil, fmt.Errorf("rbd: open %q: get_id: %w", name, err)
		}
		if id, err = decodeString("get_id", out); err != nil {
			return nil, err
		}
	} else if name == "" {
		if out, err := s.call(ctx, DirectoryObject, clsRBD, "dir_get_name", stringArg(id)); err == nil {
			name, _ = decodeString("dir_get_name", out)
		}
	}
	if o.Snapshot != "" && o.SnapshotID != 0 {
		return nil, fmt.Errorf("%w: open by snapshot name and id at once", ErrInvalid)
	}
	img := newImage(s, name, id, o.ReadOnly || o.Snapshot != "" || o.SnapshotID != 0)
	img.lock.exclusive, img.lock.deadClients = o.Exclusive, o.DeadClients
	if err := img.refresh(ctx); err != nil {
		return nil, err
	}
	if o.Snapshot != "" || o.SnapshotID != 0 {
		si, ok := img.state().userSnapshot(o.Snapshot)
		if o.SnapshotID != 0 {
			si, ok = img.state().snapshotByID(o.SnapshotID)
		}
		if !ok {
			return nil, fmt.Errorf("%w: snapshot %q (id %d) of image %q", ErrNotFound, o.Snapshot, o.SnapshotID, name)
		}
		if err := img.viewSnapshot(ctx, si); err != nil {
			return nil, err
		}
	}
	if o.NoWatch || img.snapID != NoSnap {
		return img, nil
	}
	if err := img.watchHeader(ctx); err != nil {
		return nil, err
	}
	if img.lock.needed() && o.LockInBackground && !o.Exclusive {
		img.background(func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, lockOpenTimeout)
			defer cancel()
			_ = img.lock.open(ctx) // a failure is met again by the first write
		})
	} else if img.lock.needed() {
		if err := img.lock.open(ctx); err != nil {
			_ = img.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return img, nil
}
