package rbd

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Resize changes the image size (librbd's operation::ResizeRequest). A
// shrink first deletes or truncates the data beyond the new end; the
// object map is resized before a grow and after a shrink's trim; then
// set_size, and a HEADER_UPDATE notify for other clients. Sizes librbd
// refuses (too many objects for an object map, layout arithmetic past
// 2^64) fail with ErrInvalid before anything changes.
//
// When another client owns the exclusive lock and keeps it, that owner
// is asked to resize (remote_ops.go).
func (img *Image) Resize(ctx context.Context, size uint64) error {
	done, err := img.startWrite(ctx)
	if errors.Is(err, errOwnerRefuses) {
		return img.remoteResize(ctx, size)
	}
	if err != nil {
		return err
	}
	defer done()
	return img.resize(ctx, size)
}

// resize does Resize under the caller's startWrite.
func (img *Image) resize(ctx context.Context, size uint64) error {
	st := img.state()
	if size == st.size {
		return nil
	}
	if err := validateImageSize(st.layout, size, st.features); err != nil {
		return fmt.Errorf("rbd: resize %q: %w", img.name, err)
	}
	count := st.layout.ObjectCount(size)
	if size < st.size {
		if err := img.trim(ctx, st, size, img.liveObjectMap()); err != nil {
			return err
		}
	}
	setSize := func() error {
		if err := img.s.write(ctx, img.hdr(), opCall(clsRBD, "set_size", u64Arg(size))); err != nil {
			return fmt.Errorf("rbd: %s: set_size: %w", img.name, err)
		}
		img.publishSize(size)
		return nil
	}
	var err error
	if st.features&FeatureObjectMap != 0 {
		// set_size runs before any object map update of the new size
		err = img.om.resize(ctx, count, setSize)
	} else {
		err = setSize()
	}
	if err != nil {
		return err
	}
	img.notifyUpdate(ctx)
	return nil
}

// validateImageSize refuses the sizes librbd refuses and those this
// package could not lay out: with OBJECT_MAP, more objects than
// cls_rbd's MAX_OBJECT_MAP_OBJECT_COUNT (librbd's ObjectMap::is_compatible,
// checked by CreateRequest and Operations::resize; cls_rbd's
// object_map_resize would answer EINVAL after the header exists); and
// for any image, a size whose object count or object-set arithmetic
// (size rounded up to a whole object set) would wrap around 2^64, which
// would make the striper and trim compute nonsense object numbers.
func validateImageSize(l Layout, size, features uint64) error {
	period, ok := l.objectSetSize()
	if !ok {
		n := l.normalized()
		return fmt.Errorf("%w: object set of %d × %d bytes overflows", ErrInvalid, n.StripeCount, n.ObjectSize())
	}
	if size > math.MaxUint64-period {
		return fmt.Errorf("%w: size %d too large for %d-byte object sets", ErrInvalid, size, period)
	}
	if features&FeatureObjectMap != 0 {
		if c := l.ObjectCount(size); c > maxObjectMapObjects {
			return fmt.Errorf("%w: size %d needs %d objects, more than an object map holds (%d)",
				ErrInvalid, size, c, maxObjectMapObjects)
		}
	}
	return nil
}
