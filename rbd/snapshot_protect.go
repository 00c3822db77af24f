package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Snapshot protection (clone v1): a protected snapshot cannot be removed;
// unprotecting one refuses while clones of it exist. librbd's
// SnapshotProtectRequest and SnapshotUnprotectRequest, with the
// UNPROTECTING state in between so no clone can attach meanwhile.

// ProtectSnapshot protects a user snapshot. Already protected: ErrBusy
// (librbd answers EBUSY too).
func (img *Image) ProtectSnapshot(ctx context.Context, name string) error {
	if img.feat()&FeatureLayering == 0 {
		return fmt.Errorf("%w: image %q lacks the layering feature", ErrInvalid, img.name)
	}
	return img.changeProtection(ctx, name, true)
}

// UnprotectSnapshot unprotects a user snapshot. It fails with ErrBusy
// while the snapshot has clones: clone v2 children on the header, or
// clone v1 children in rbd_children of any pool (countChildren).
func (img *Image) UnprotectSnapshot(ctx context.Context, name string) error {
	return img.changeProtection(ctx, name, false)
}

// changeProtection protects (UNPROTECTED → PROTECTED) or unprotects
// (PROTECTED → UNPROTECTING → UNPROTECTED, back to PROTECTED while
// clones exist) user snapshot name, then tells other clients.
func (img *Image) changeProtection(ctx context.Context, name string, protect bool) error {
	si, done, err := img.startSnapshotWrite(ctx, name)
	if err != nil {
		return err
	}
	defer done()
	ps, err := img.ProtectionStatus(ctx, name)
	if err != nil {
		return err
	}
	switch {
	case protect && ps != ProtectionUnprotected:
		return fmt.Errorf("%w: snapshot %q is already protected", ErrBusy, name)
	case protect:
		err = img.setProtection(ctx, si.ID, ProtectionProtected)
	case ps != ProtectionProtected:
		return fmt.Errorf("%w: snapshot %q is not protected", ErrInvalid, name)
	default:
		err = img.unprotect(ctx, si)
	}
	if err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}

// unprotect moves a protected snapshot through UNPROTECTING, so no clone
// can attach meanwhile, to UNPROTECTED unless it has clones.
func (img *Image) unprotect(ctx context.Context, si SnapshotInfo) error {
	if err := img.setProtection(ctx, si.ID, ProtectionUnprotecting); err != nil {
		return err
	}
	n, err := img.countChildren(ctx, si.ID)
	if err == nil && n > 0 {
		err = fmt.Errorf("%w: snapshot %q has %d clone children", ErrBusy, si.Name, n)
	}
	if err != nil {
		_ = img.setProtection(context.WithoutCancel(ctx), si.ID, ProtectionProtected)
		return err
	}
	return img.setProtection(ctx, si.ID, ProtectionUnprotected)
}

// ProtectionStatus returns a user snapshot's protection status.
func (img *Image) ProtectionStatus(ctx context.Context, name string) (uint8, error) {
	si, err := img.userSnapshot(name)
	if err != nil {
		return 0, err
	}
	out, err := img.s.call(ctx, img.hdr(), clsRBD, "get_protection_status", snapIDArg(si.ID))
	if err != nil {
		return 0, fmt.Errorf("rbd: %s: get_protection_status: %w", img.name, err)
	}
	return decodeProtectionStatus(out)
}

func (img *Image) setProtection(ctx context.Context, snap uint64, status uint8) error {
	err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "set_protection_status", setProtectionStatusArgs(snap, status)))
	if err != nil {
		return fmt.Errorf("rbd: %s: set_protection_status: %w", img.name, err)
	}
	return img.refresh(ctx)
}

// countChildren counts a snapshot's clones: v2 children recorded on the
// header, and v1 children, which are recorded only in rbd_children of the
// CHILD's pool, so every pool is asked, as librbd's
// SnapshotUnprotectRequest does (a pool with no rbd_children, or gone
// meanwhile, has none). Any other failure is an error: unprotecting a
// snapshot a clone still reads would let its data be deleted.
func (img *Image) countChildren(ctx context.Context, snap uint64) (int, error) {
	v2, err := img.snapshotChildren(ctx, snap)
	if err != nil {
		return 0, err
	}
	pools, err := img.s.poolIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("rbd: %s: listing pools for clone v1 children: %w", img.name, err)
	}
	p := ParentSpec{PoolID: img.s.poolID(), ImageID: img.id, SnapID: snap}
	n := len(v2)
	for _, pool := range pools {
		ps, err := img.s.withPool(ctx, pool, "") // v1 clones have no namespace
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("rbd: %s: pool %d: %w", img.name, pool, err)
		}
		out, err := ps.call(ctx, ChildrenObject, clsRBD, "get_children", legacyParentArgs(p))
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("rbd: %s: get_children in pool %d: %w", img.name, pool, err)
		}
		v1, err := decodeStringSet("get_children", out)
		if err != nil {
			return 0, err
		}
		n += len(v1)
	}
	return n, nil
}

// legacyParentArgs: get_children's i64 pool, string image id, u64 snap id.
func legacyParentArgs(p ParentSpec) []byte {
	e := enc()
	e.I64(p.PoolID)
	e.String(p.ImageID)
	e.U64(p.SnapID)
	return e.B
}

// decodeStringSet reads set<string>.
func decodeStringSet(method string, b []byte) ([]string, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(4)
	out := make([]string, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		out = append(out, d.String())
	}
	return out, finish(method, d)
}
