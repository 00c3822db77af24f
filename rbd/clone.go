package rbd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

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
	return clone(ctx, newRadosStore(parentIO), parentName, "", &OpenOptions{Snapshot: snapName}, newRadosStore(childIO), childName, opts)
}

// CloneByID is Clone with the parent given by image id, which reaches a
// parent that waits in the trash (it has no name any more).
func CloneByID(ctx context.Context, parentIO *rados.IOContext, parentID, snapName string,
	childIO *rados.IOContext, childName string, opts *CreateOptions) (string, error) {
	return clone(ctx, newRadosStore(parentIO), "", parentID, &OpenOptions{Snapshot: snapName}, newRadosStore(childIO), childName, opts)
}

// CloneSnapshotID is CloneByID with the parent snapshot given by id, of
// any namespace but the trash (`rbd clone --snap-id`): a member's
// snapshot of a group snapshot clones this way. A snapshot outside the
// user namespace takes clone v2 (librbd refuses v1 for it: nothing can
// protect it).
func CloneSnapshotID(ctx context.Context, parentIO *rados.IOContext, parentID string, snapID uint64,
	childIO *rados.IOContext, childName string, opts *CreateOptions) (string, error) {
	if snapID == 0 || snapID == NoSnap {
		return "", fmt.Errorf("%w: clone of snapshot id %d", ErrInvalid, snapID)
	}
	return clone(ctx, newRadosStore(parentIO), "", parentID, &OpenOptions{SnapshotID: snapID}, newRadosStore(childIO), childName, opts)
}

func clone(ctx context.Context, ps store, parentName, parentID string, at *OpenOptions, cs store, childName string, opts *CreateOptions) (id string, err error) {
	parent, err := open(ctx, ps, parentName, parentID, at)
	if err != nil {
		return "", err
	}
	defer parent.Close(context.WithoutCancel(ctx))
	snapName := at.Snapshot
	var snapNS SnapshotNamespaceType
	for _, si := range parent.state().snaps {
		if si.ID == parent.snapID {
			snapName, snapNS = si.Name, si.Namespace.Type
		}
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
	format := o.CloneFormat
	if format == CloneFormatAuto {
		if format, err = autoCloneFormat(ctx, cs); err != nil {
			return "", err
		}
		if snapNS != SnapNamespaceUser {
			format = CloneFormatV2
		}
	}
	if format == 1 && snapNS != SnapNamespaceUser {
		return "", fmt.Errorf("%w: clone v1 of %s@%s, a %v snapshot", ErrInvalid, pinfo.Name, snapName, snapNS)
	}
	if format == 1 {
		out, err := ps.call(ctx, HeaderObjectName(pinfo.ID), clsRBD, "get_protection_status", snapIDArg(parent.snapID))
		if err != nil {
			return "", fmt.Errorf("rbd: clone %q: get_protection_status: %w", childName, err)
		}
		if st, err := decodeProtectionStatus(out); err != nil {
			return "", err
		} else if st != ProtectionProtected {
			return "", fmt.Errorf("%w: clone v1 needs a protected parent snapshot; %s@%s is not", ErrInvalid, pinfo.Name, snapName)
		}
	}
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
	if format == 1 {
		// Clone v1: the child is listed in rbd_children of its own pool
		// (AttachChildRequest); the parent snapshot stays protected.
		if err = cs.write(ctx, ChildrenObject, opCall(clsRBD, "add_child", legacyChildArgs(spec, id))); err != nil {
			return "", fmt.Errorf("rbd: clone %q: add_child: %w", childName, err)
		}
	} else {
		if err = cs.write(ctx, hdr, opCall(clsRBD, "op_features_set", twoU64Args(OpFeatureCloneChild, OpFeatureCloneChild))); err != nil {
			return "", fmt.Errorf("rbd: clone %q: op_features_set: %w", childName, err)
		}
		child := ChildSpec{PoolID: cs.poolID(), Namespace: cs.namespace(), ImageID: id}
		if err = ps.write(ctx, HeaderObjectName(pinfo.ID), opCall(clsRBD, "child_attach", childAttachArgs(spec.SnapID, child))); err != nil {
			return "", fmt.Errorf("rbd: clone %q: child_attach: %w", childName, err)
		}
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

// Clone formats for CreateOptions.CloneFormat.
const (
	CloneFormatAuto = -1 // v1 when the cluster lets pre-Mimic clients in, else v2 (librbd's "auto")
	CloneFormatV1   = 1  // rbd_children, needs a protected parent snapshot
	CloneFormatV2   = 2  // children on the parent header; the default (also 0)
)

// releaseOrder ranks the release names `ceph osd dump` prints for
// require_min_compat_client and min_compat_client.
var releaseOrder = []string{"argonaut", "bobtail", "cuttlefish", "dumpling", "emperor", "firefly", "giant",
	"hammer", "infernalis", "jewel", "kraken", "luminous", "mimic", "nautilus", "octopus", "pacific",
	"quincy", "reef", "squid", "tentacle"}

// autoCloneFormat picks clone v2 only if the OSD map keeps pre-Mimic
// clients out (librbd: max(min_compat_client, require_min_compat_client)
// ≥ mimic), since those cannot read v2 clones.
func autoCloneFormat(ctx context.Context, s store) (int, error) {
	out, err := s.monCommand(ctx, map[string]string{"prefix": "osd dump", "format": "json"})
	if err != nil {
		return 0, fmt.Errorf("rbd: clone: osd dump: %w", err)
	}
	var d struct {
		Require string `json:"require_min_compat_client"`
		Min     string `json:"min_compat_client"`
	}
	if err := json.Unmarshal(out, &d); err != nil {
		return 0, fmt.Errorf("%w: osd dump: %v", ErrMalformed, err)
	}
	rank := func(r string) int { return slices.Index(releaseOrder, r) }
	if max(rank(d.Require), rank(d.Min)) >= rank("mimic") {
		return CloneFormatV2, nil
	}
	return CloneFormatV1, nil
}
