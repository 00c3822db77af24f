package rbd

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// cls_rbd's consistency groups (cls_rbd_types.h GroupSpec, GroupImageSpec,
// GroupImageStatus, GroupSnapshot, ImageSnapshotSpec; checked against the
// omap values `rbd group` writes on Pacific, Reef and Tentacle, kept in
// testdata/<release>/group.*):
//
//	rbd_group_directory        name_<name> → id, id_<id> → name (like rbd_directory)
//	rbd_group_header.<id>      image_<pool as %016x>_<image id> → u8 link state
//	                           snapshot_<snap id> → GroupSnapshot
//	                           (Squid on: snap_order_<snap id>, snap_max_order)
//	rbd_header.<image id>      rbd_group_ref → GroupSpec, op feature GROUP
//
// A member image's snapshot of a group snapshot lives in the group
// snapshot namespace, named .group.<group pool as %x>_<group id>_<group snap id>.

// Object names of groups.
const (
	GroupDirectoryObject = "rbd_group_directory"
	groupHeaderPrefix    = "rbd_group_header."
)

// GroupHeaderObjectName is rbd_group_header.<id>.
func GroupHeaderObjectName(id string) string { return groupHeaderPrefix + id }

// GroupSpec names a group from one of its images: cls::rbd::GroupSpec,
// struct v1 { i64 pool_id, string group_id }.
type GroupSpec struct {
	PoolID  int64
	GroupID string
}

// Valid reports whether the spec names a group (an image in none has
// pool -1 or no id).
func (g GroupSpec) Valid() bool { return g.GroupID != "" && g.PoolID >= 0 }

func encodeGroupSpec(e *encoding.Encoder, g GroupSpec) {
	m := e.StructBegin(1, 1)
	e.I64(g.PoolID)
	e.String(g.GroupID)
	e.StructEnd(m)
}

func decodeGroupSpec(d *encoding.Decoder) GroupSpec {
	body, _ := d.Struct(1)
	return GroupSpec{PoolID: body.I64(), GroupID: body.String()}
}

// groupSpecArg is the argument of image_group_add and image_group_remove.
func groupSpecArg(g GroupSpec) []byte {
	e := enc()
	encodeGroupSpec(e, g)
	return e.B
}

// decodeImageGroupGet reads image_group_get's reply: a GroupSpec.
func decodeImageGroupGet(b []byte) (GroupSpec, error) {
	d := encoding.NewDecoder(b)
	g := decodeGroupSpec(d)
	return g, finish("image_group_get", d)
}

// GroupImageState is cls::rbd::GroupImageLinkState: an image is attached
// once both its header and the group record the link; incomplete while
// being added or removed.
type GroupImageState uint8

const (
	GroupImageAttached   GroupImageState = 0
	GroupImageIncomplete GroupImageState = 1
)

func (s GroupImageState) String() string {
	switch s {
	case GroupImageAttached:
		return "attached"
	case GroupImageIncomplete:
		return "incomplete"
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

// GroupImage is a member of a group: cls::rbd::GroupImageStatus, struct
// v1 { GroupImageSpec (struct v1 { string image_id, i64 pool_id }), u8
// state }.
type GroupImage struct {
	PoolID  int64
	ImageID string
	State   GroupImageState
}

func encodeGroupImageSpec(e *encoding.Encoder, pool int64, image string) {
	m := e.StructBegin(1, 1)
	e.String(image)
	e.I64(pool)
	e.StructEnd(m)
}

func decodeGroupImageSpec(d *encoding.Decoder) (pool int64, image string) {
	body, _ := d.Struct(1)
	image = body.String()
	pool = body.I64()
	return pool, image
}

// groupImageSetArgs: GroupImageStatus.
func groupImageSetArgs(gi GroupImage) []byte {
	e := enc()
	m := e.StructBegin(1, 1)
	encodeGroupImageSpec(e, gi.PoolID, gi.ImageID)
	e.U8(uint8(gi.State))
	e.StructEnd(m)
	return e.B
}

// groupImageRemoveArgs: GroupImageSpec.
func groupImageRemoveArgs(pool int64, image string) []byte {
	e := enc()
	encodeGroupImageSpec(e, pool, image)
	return e.B
}

// groupImageListArgs: GroupImageSpec start_after (pool -1: from the
// start), u64 max_return.
func groupImageListArgs(startPool int64, startImage string, max uint64) []byte {
	e := enc()
	encodeGroupImageSpec(e, startPool, startImage)
	e.U64(max)
	return e.B
}

// decodeGroupImageList reads vector<GroupImageStatus>.
func decodeGroupImageList(b []byte) ([]GroupImage, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(6 + 4 + 8 + 1)
	out := make([]GroupImage, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		body, _ := d.Struct(1)
		var gi GroupImage
		gi.PoolID, gi.ImageID = decodeGroupImageSpec(body)
		gi.State = GroupImageState(body.U8())
		out = append(out, gi)
	}
	return out, finish("group_image_list", d)
}

// GroupSnapshotState is cls::rbd::GroupSnapshotState.
type GroupSnapshotState uint8

const (
	GroupSnapshotIncomplete GroupSnapshotState = 0
	GroupSnapshotComplete   GroupSnapshotState = 1
)

func (s GroupSnapshotState) String() string {
	switch s {
	case GroupSnapshotIncomplete:
		return "incomplete"
	case GroupSnapshotComplete:
		return "complete"
	}
	return fmt.Sprintf("unknown(%d)", uint8(s))
}

// GroupImageSnapshot is one member's snapshot of a group snapshot:
// cls::rbd::ImageSnapshotSpec, struct v1 { i64 pool, string image_id,
// u64 snap_id }. SnapID is 0 until the member's snapshot exists (the
// record of an incomplete group snapshot).
type GroupImageSnapshot struct {
	PoolID  int64
	ImageID string
	SnapID  uint64
}

// GroupSnapshot is cls::rbd::GroupSnapshot, struct v1 { string id, string
// name, u8 state, vector<ImageSnapshotSpec> snaps } (v2, not written by
// Tentacle's `rbd group snap create`, adds a GroupSnapshotNamespace,
// which is skipped).
type GroupSnapshot struct {
	ID    string
	Name  string
	State GroupSnapshotState
	Snaps []GroupImageSnapshot
}

func encodeGroupSnapshot(e *encoding.Encoder, gs GroupSnapshot) {
	m := e.StructBegin(1, 1)
	e.String(gs.ID)
	e.String(gs.Name)
	e.U8(uint8(gs.State))
	e.U32(uint32(len(gs.Snaps)))
	for _, s := range gs.Snaps {
		sm := e.StructBegin(1, 1)
		e.I64(s.PoolID)
		e.String(s.ImageID)
		e.U64(s.SnapID)
		e.StructEnd(sm)
	}
	e.StructEnd(m)
}

func decodeGroupSnapshot(d *encoding.Decoder) GroupSnapshot {
	body, _ := d.Struct(1)
	gs := GroupSnapshot{ID: body.String(), Name: body.String(), State: GroupSnapshotState(body.U8())}
	n := body.Count(6 + 8 + 4 + 8)
	gs.Snaps = make([]GroupImageSnapshot, 0, n)
	for i := 0; i < n && body.Err() == nil; i++ {
		s, _ := body.Struct(1)
		gs.Snaps = append(gs.Snaps, GroupImageSnapshot{PoolID: s.I64(), ImageID: s.String(), SnapID: s.U64()})
	}
	return gs
}

// groupSnapSetArgs: GroupSnapshot.
func groupSnapSetArgs(gs GroupSnapshot) []byte {
	e := enc()
	encodeGroupSnapshot(e, gs)
	return e.B
}

// groupSnapListArgs: GroupSnapshot start_after (only its id counts), u64
// max_return.
func groupSnapListArgs(startID string, max uint64) []byte {
	e := enc()
	encodeGroupSnapshot(e, GroupSnapshot{ID: startID})
	e.U64(max)
	return e.B
}

// decodeGroupSnapList reads vector<GroupSnapshot>.
func decodeGroupSnapList(b []byte) ([]GroupSnapshot, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(6 + 4 + 4 + 1 + 4)
	out := make([]GroupSnapshot, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		out = append(out, decodeGroupSnapshot(d))
	}
	return out, finish("group_snap_list", d)
}

// decodeGroupSnapGet reads group_snap_get_by_id's reply.
func decodeGroupSnapGet(b []byte) (GroupSnapshot, error) {
	d := encoding.NewDecoder(b)
	gs := decodeGroupSnapshot(d)
	return gs, finish("group_snap_get_by_id", d)
}

// GroupImageSnapName is the name librbd gives a member image's snapshot
// of a group snapshot (calc_ind_image_snap_name):
// .group.<group pool as %x>_<group id>_<group snapshot id>.
func GroupImageSnapName(groupPool int64, groupID, groupSnapID string) string {
	return fmt.Sprintf(".group.%x_%s_%s", groupPool, groupID, groupSnapID)
}
