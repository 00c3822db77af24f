package rbd

import (
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// SnapshotNamespaceType says who owns a snapshot (cls::rbd::SnapshotNamespaceType).
type SnapshotNamespaceType uint32

const (
	SnapNamespaceUser   SnapshotNamespaceType = 0
	SnapNamespaceGroup  SnapshotNamespaceType = 1
	SnapNamespaceTrash  SnapshotNamespaceType = 2
	SnapNamespaceMirror SnapshotNamespaceType = 3
)

func (t SnapshotNamespaceType) String() string {
	switch t {
	case SnapNamespaceUser:
		return "user"
	case SnapNamespaceGroup:
		return "group"
	case SnapNamespaceTrash:
		return "trash"
	case SnapNamespaceMirror:
		return "mirror"
	}
	return fmt.Sprintf("unknown(%d)", uint32(t))
}

// SnapshotNamespace is the decoded variant. The fields of the user, group
// and trash namespaces are kept; mirror bodies are skipped.
type SnapshotNamespace struct {
	Type SnapshotNamespaceType
	// Trash namespace: the name and namespace the snapshot had before it
	// was moved to the trash.
	OriginalName string
	OriginalType SnapshotNamespaceType
	// Group namespace (a member's snapshot of a group snapshot): the
	// group's pool and id and the group snapshot's id.
	GroupPool       int64
	GroupID         string
	GroupSnapshotID string
}

// encodeSnapshotNamespace: struct v2/c1 { u32 type, type-specific body }.
// The user namespace has an empty body; the group namespace's is { i64
// group_pool, string group_id, string group_snapshot_id }.
func encodeSnapshotNamespace(e *encoding.Encoder, ns SnapshotNamespace) {
	m := e.StructBegin(2, 1)
	e.U32(uint32(ns.Type))
	switch ns.Type {
	case SnapNamespaceTrash:
		e.String(ns.OriginalName)
		e.U32(uint32(ns.OriginalType))
	case SnapNamespaceGroup:
		e.I64(ns.GroupPool)
		e.String(ns.GroupID)
		e.String(ns.GroupSnapshotID)
	}
	e.StructEnd(m)
}

func decodeSnapshotNamespace(d *encoding.Decoder) SnapshotNamespace {
	body, _ := d.Struct(1)
	ns := SnapshotNamespace{Type: SnapshotNamespaceType(body.U32())}
	switch ns.Type {
	case SnapNamespaceTrash:
		ns.OriginalName = body.String()
		ns.OriginalType = SnapshotNamespaceType(body.U32())
	case SnapNamespaceGroup:
		ns.GroupPool = body.I64()
		ns.GroupID = body.String()
		ns.GroupSnapshotID = body.String()
	}
	return ns
}

// SnapshotInfo is cls::rbd::SnapshotInfo, the snapshot_get reply.
type SnapshotInfo struct {
	ID         uint64
	Namespace  SnapshotNamespace
	Name       string
	Size       uint64
	Timestamp  time.Time
	ChildCount uint32
}

// decodeSnapshotInfo: struct v1/c1 { u64 id, SnapshotNamespace, string
// name, u64 image_size, utime timestamp, u32 child_count }. child_count
// is 32 bits wide (checked against a Pacific OSD's reply).
func decodeSnapshotInfo(b []byte) (SnapshotInfo, error) {
	d := encoding.NewDecoder(b)
	body, _ := d.Struct(1)
	var s SnapshotInfo
	s.ID = body.U64()
	s.Namespace = decodeSnapshotNamespace(body)
	s.Name = body.String()
	s.Size = body.U64()
	s.Timestamp = body.Timespec()
	s.ChildCount = body.U32()
	return s, finish("snapshot_get", d)
}

// snapshotAddArgs: string name, u64 snap_id, SnapshotNamespace — the name
// comes first (cls_client::snapshot_add).
func snapshotAddArgs(id uint64, name string, ns SnapshotNamespace) []byte {
	e := enc()
	e.String(name)
	e.U64(id)
	encodeSnapshotNamespace(e, ns)
	return e.B
}

// Protection status of a snapshot (clone v1).
const (
	ProtectionUnprotected  uint8 = 0
	ProtectionUnprotecting uint8 = 1
	ProtectionProtected    uint8 = 2
)

// setProtectionStatusArgs: u64 snap_id, u8 status.
func setProtectionStatusArgs(snap uint64, status uint8) []byte {
	e := enc()
	e.U64(snap)
	e.U8(status)
	return e.B
}

// decodeProtectionStatus: u8.
func decodeProtectionStatus(b []byte) (uint8, error) {
	d := encoding.NewDecoder(b)
	s := d.U8()
	return s, finish("get_protection_status", d)
}
