package rbd

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// CreateOptions shape a new image. The zero value gives order 22 (4 MiB
// objects) and only the layering feature.
type CreateOptions struct {
	Order       uint8  // 0: 22
	Features    uint64 // 0: FeatureLayering
	StripeUnit  uint64 // with StripeCount: fancy striping (adds STRIPINGV2)
	StripeCount uint64
	DataPool    int64 // ≥ 0 (and not the image's pool): data objects go there (adds DATA_POOL); 0 with DataPoolSet false is none
	DataPoolSet bool
	// CloneFormat, for Clone only: CloneFormatV2 (or 0), CloneFormatV1, or
	// CloneFormatAuto.
	CloneFormat int
	// ID, if set, is the image id to use instead of a generated one, as
	// librbd's CreateRequest takes one for migration and mirroring: an
	// image recreated under its old id keeps every reference to it (a CSI
	// journal's csi.imageid, rbd_data.<id> object names). At most
	// maxImageIDLength characters from [0-9a-zA-Z]; an id already in use
	// fails with ErrExists.
	ID string
}

// Create makes a format 2 image called name in io's pool and namespace,
// following librbd's image::CreateRequest: rbd_id.<name>, the directory
// entry, the header, the striping parameters, and an empty object map.
// On failure it removes what it made.
func Create(ctx context.Context, io *rados.IOContext, name string, size uint64, opts *CreateOptions) (id string, err error) {
	return create(ctx, newRadosStore(io), name, size, opts)
}

func create(ctx context.Context, s store, name string, size uint64, opts *CreateOptions) (id string, err error) {
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if name == "" {
		return "", fmt.Errorf("%w: empty image name", ErrInvalid)
	}
	if o.Order == 0 {
		o.Order = 22
	}
	if o.Features == 0 {
		o.Features = FeatureLayering
	}
	l := Layout{Order: o.Order, StripeUnit: o.StripeUnit, StripeCount: o.StripeCount}
	if err := l.Validate(); err != nil {
		return "", err
	}
	if l.IsFancy() {
		o.Features |= FeatureStripingV2
	}
	dataPool := int64(-1)
	if o.DataPoolSet && o.DataPool != s.poolID() {
		dataPool = o.DataPool
		o.Features |= FeatureDataPool
	}
	if o.Features&FeatureFastDiff != 0 && o.Features&FeatureObjectMap == 0 ||
		o.Features&FeatureObjectMap != 0 && o.Features&FeatureExclusiveLock == 0 {
		return "", fmt.Errorf("%w: fast-diff needs object-map, object-map needs exclusive-lock", ErrInvalid)
	}
	if bad := o.Features &^ featuresSupportedWrite; bad != 0 {
		return "", &FeatureError{Image: name, Unsupported: bad, Write: true}
	}
	// Before any object exists: a refused size leaves nothing behind.
	if err := validateImageSize(l, size, o.Features); err != nil {
		return "", fmt.Errorf("rbd: create %q: %w", name, err)
	}

	id = o.ID
	if id == "" {
		id = GenerateImageID(s.clientID())
	} else if err := validImageID(id); err != nil {
		return "", err
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	cleanup := context.WithoutCancel(ctx)

	if err = s.write(ctx, IDObjectName(name), opSetID(id)); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return "", fmt.Errorf("%w: image %q", ErrExists, name)
		}
		return "", fmt.Errorf("rbd: create %q: rbd_id: %w", name, err)
	}
	undo = append(undo, func() { _ = s.remove(cleanup, IDObjectName(name)) })

	if err = s.write(ctx, DirectoryObject, opCall(clsRBD, "dir_add_image", dirAddArgs(name, id))); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = fmt.Errorf("%w: image %q (directory)", ErrExists, name)
		} else if errors.Is(err, syscall.EBADF) {
			// cls_rbd's dir_add_image: the id is listed under another name.
			err = fmt.Errorf("%w: image id %q (directory)", ErrExists, id)
		}
		return "", fmt.Errorf("rbd: create %q: directory: %w", name, err)
	}
	// The closure must not read the named result id: every failing
	// return below sets it to "" before the deferred undo runs, and
	// dir_remove_image with an empty id leaves the entry behind.
	newID := id
	undo = append(undo, func() {
		_ = s.write(cleanup, DirectoryObject, opCall(clsRBD, "dir_remove_image", dirAddArgs(name, newID)))
	})

	hdr := HeaderObjectName(id)
	create := rados.NewWriteOp()
	create.Create(true)
	create.Exec(clsRBD, "create", createArgs(size, o.Order, o.Features, dataObjectPrefix(s.poolID(), id, dataPool), dataPool))
	if err = s.write(ctx, hdr, create); err != nil {
		if errors.Is(err, syscall.EEXIST) {
			err = fmt.Errorf("%w: image id %q", ErrExists, id)
		}
		return "", fmt.Errorf("rbd: create %q: header: %w", name, err)
	}
	undo = append(undo, func() { _ = s.remove(cleanup, hdr) })

	if l.IsFancy() {
		n := l.normalized()
		if err = s.write(ctx, hdr, opCall(clsRBD, "set_stripe_unit_count", twoU64Args(n.StripeUnit, n.StripeCount))); err != nil {
			return "", fmt.Errorf("rbd: create %q: striping: %w", name, err)
		}
	}
	if o.Features&FeatureObjectMap != 0 {
		om := ObjectMapName(id, NoSnap)
		if err = s.write(ctx, om, opCall(clsRBD, "object_map_resize", objectMapResizeArgs(l.ObjectCount(size), ObjectNonexistent))); err != nil {
			return "", fmt.Errorf("rbd: create %q: object map: %w", name, err)
		}
		undo = append(undo, func() { _ = s.remove(cleanup, om) })
	}
	return id, nil
}
