package rbd

import (
	"context"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Clone makes childName (in childIO's pool and namespace) a clone v2 of
// parentName@snapName (librbd's CloneRequest with clone format 2, which
// needs no snapshot protection): the child is created with the parent's
// layout, parent_attach records the parent and an overlap of the snapshot
// size, op feature CLONE_CHILD is set on the child, child_attach registers
// the child on the parent's header (which counts it on the snapshot and
// sets CLONE_PARENT there), and the image metadata is copied.
func Clone(ctx context.Context, parentIO *rados.IOContext, parentName, snapName string,
	childIO *rados.IOContext, childName string, opts *CreateOptions) (string, error) {
	return clone(ctx, newRadosStore(parentIO), parentName, snapName, newRadosStore(childIO), childName, opts)
}

func clone(ctx context.Context, ps store, parentName, snapName string, cs store, childName string, opts *CreateOptions) (id string, err error) {
	parent, err := open(ctx, ps, parentName, "", &OpenOptions{Snapshot: snapName})
	if err != nil {
		return "", err
	}
	pinfo := parent.Stat()
	if pinfo.Features&FeatureLayering == 0 {
		return "", fmt.Errorf("%w: parent %q lacks the layering feature", ErrInvalid, parentName)
	}
	var o CreateOptions
	if opts != nil {
		o = *opts
	}
	if o.Order == 0 {
		o.Order = pinfo.Order
		if o.StripeUnit == 0 && pinfo.Layout.IsFancy() {
			o.StripeUnit, o.StripeCount = pinfo.Layout.StripeUnit, pinfo.Layout.StripeCount
		}
	}
	o.Features |= FeatureLayering
	id, err = create(ctx, cs, childName, pinfo.Size, &o)
	if err != nil {
		return "", err
	}
	cleanup := context.WithoutCancel(ctx)
	defer func() {
		if err != nil {
			_ = remove(cleanup, cs, childName, "")
		}
	}()
	spec := ParentSpec{PoolID: ps.poolID(), Namespace: ps.namespace(), ImageID: pinfo.ID, SnapID: parent.snapID}
	hdr := HeaderObjectName(id)
	if err = cs.write(ctx, hdr, opCall(clsRBD, "parent_attach", parentAttachArgs(spec, pinfo.Size, false))); err != nil {
		return "", fmt.Errorf("rbd: clone %q: parent_attach: %w", childName, err)
	}
	if err = cs.write(ctx, hdr, opCall(clsRBD, "op_features_set", twoU64Args(OpFeatureCloneChild, OpFeatureCloneChild))); err != nil {
		return "", fmt.Errorf("rbd: clone %q: op_features_set: %w", childName, err)
	}
	child := ChildSpec{PoolID: cs.poolID(), Namespace: cs.namespace(), ImageID: id}
	if err = ps.write(ctx, HeaderObjectName(pinfo.ID), opCall(clsRBD, "child_attach", childAttachArgs(spec.SnapID, child))); err != nil {
		return "", fmt.Errorf("rbd: clone %q: child_attach: %w", childName, err)
	}
	if out, merr := ps.call(ctx, HeaderObjectName(pinfo.ID), clsRBD, "metadata_list", metadataListArgs("", 1024)); merr == nil {
		if kv, derr := decodeMetadataList(out); derr == nil && len(kv) > 0 {
			if err = cs.write(ctx, hdr, opCall(clsRBD, "metadata_set", metadataSetArgs(kv))); err != nil {
				return "", fmt.Errorf("rbd: clone %q: metadata_set: %w", childName, err)
			}
		}
	}
	return id, nil
}
