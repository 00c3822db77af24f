package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// Flatten copies every object the parent still provides into the clone
// (copyup of the parent's data for each missing object within the
// overlap), then cuts the link: parent_detach and clearing CLONE_CHILD on
// the clone, child_detach (or the v1 remove_child) on the parent side.
// Snapshots of the clone keep reading through unless DEEP_FLATTEN applies,
// as in librbd; then the child link stays until the last of them goes.
func (img *Image) Flatten(ctx context.Context) error {
	done, err := img.startWrite(ctx)
	if err != nil {
		return err
	}
	defer done()
	st := img.state()
	if st.parentImg == nil {
		return fmt.Errorf("%w: image %q has no parent", ErrInvalid, img.name)
	}
	n := st.layout.ObjectCount(min(st.overlap, st.size))
	objs := make([]ObjectExtent, 0, n)
	for o := uint64(0); o < n; o++ {
		objs = append(objs, ObjectExtent{ObjectNo: o})
	}
	err = forExtents(objs, func(e ObjectExtent) error {
		if !img.objectInOverlap(st, e.ObjectNo) {
			return nil
		}
		oid := DataObjectName(st.prefix, e.ObjectNo)
		if ok, err := st.data.exists(ctx, oid); err != nil || ok {
			return err
		}
		data, err := img.parentObjectData(ctx, st, e.ObjectNo)
		if err != nil {
			return err
		}
		if len(data) == 0 || allZero(data) {
			return nil // nothing to keep; the object stays absent
		}
		if err := img.markObject(ctx, st, e.ObjectNo, ObjectExists); err != nil {
			return err
		}
		// copyup (io.go) sends it with an empty snap context when the
		// clone has snapshots, so they keep the data after the detach.
		_, err = img.copyup(ctx, st, e.ObjectNo, data, true)
		return err
	})
	if err != nil {
		return err
	}
	// The spec is taken before the detach: a background refresh may
	// clear the parent as soon as the header has lost it.
	p := st.parent
	// Without DEEP_FLATTEN the clone's snapshots keep reading through the
	// parent: parent_detach keeps the spec for them (and CLONE_CHILD), and
	// the child link stays until the last such snapshot is removed
	// (librbd's FlattenRequest::detach_child; removeSnapshot detaches).
	keepLink := st.features&FeatureDeepFlatten == 0 && len(st.snaps) > 0
	if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "parent_detach", nil)); err != nil {
		if !errors.Is(err, syscall.EOPNOTSUPP) {
			return fmt.Errorf("rbd: %s: parent_detach: %w", img.name, err)
		}
		if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "remove_parent", nil)); err != nil {
			return fmt.Errorf("rbd: %s: remove_parent: %w", img.name, err)
		}
	}
	if !keepLink {
		err = img.s.write(ctx, img.hdr(), opCall(clsRBD, "op_features_set", twoU64Args(0, OpFeatureCloneChild)))
		if err != nil && !errors.Is(err, syscall.EOPNOTSUPP) {
			return fmt.Errorf("rbd: %s: op_features_set: %w", img.name, err)
		}
		if err := img.detachParentSpec(ctx, p); err != nil {
			return err
		}
	}
	if err := img.refresh(ctx); err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
