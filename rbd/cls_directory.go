package rbd

import (
	"sort"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// dirAddArgs: string name, string id (dir_add_image, dir_remove_image).
func dirAddArgs(name, id string) []byte {
	e := enc()
	e.String(name)
	e.String(id)
	return e.B
}

// dirListArgs: string start_after, u64 max_return.
func dirListArgs(start string, max uint64) []byte { return metadataListArgs(start, max) }

// decodeDirList: map<string name, string id>.
func decodeDirList(b []byte) (map[string]string, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(8)
	m := make(map[string]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = d.String()
	}
	return m, finish("dir_list", d)
}

// TrashSource says why an image is in the trash (cls::rbd::TrashImageSource).
type TrashSource uint8

const (
	TrashSourceUser       TrashSource = 0
	TrashSourceMirroring  TrashSource = 1
	TrashSourceMigration  TrashSource = 2
	TrashSourceRemoving   TrashSource = 3
	TrashSourceUserParent TrashSource = 4
)

// TrashState is cls::rbd::TrashImageState.
type TrashState uint8

const (
	TrashStateNormal    TrashState = 0
	TrashStateMoving    TrashState = 1
	TrashStateRemoving  TrashState = 2
	TrashStateRestoring TrashState = 3
)

// TrashSpec is cls::rbd::TrashImageSpec, the value of id_<id> in rbd_trash.
type TrashSpec struct {
	Source       TrashSource
	Name         string
	DeletionTime time.Time
	DefermentEnd time.Time
	State        TrashState
}

// encodeTrashSpec: struct v2/c1 { u8 source, string name, utime
// deletion_time, utime deferment_end_time, u8 state }.
func encodeTrashSpec(e *encoding.Encoder, t TrashSpec) {
	m := e.StructBegin(2, 1)
	e.U8(uint8(t.Source))
	e.String(t.Name)
	e.Timespec(t.DeletionTime)
	e.Timespec(t.DefermentEnd)
	e.U8(uint8(t.State))
	e.StructEnd(m)
}

func decodeTrashSpecFrom(d *encoding.Decoder) TrashSpec {
	body, h := d.Struct(1)
	var t TrashSpec
	t.Source = TrashSource(body.U8())
	t.Name = body.String()
	t.DeletionTime = body.Timespec()
	t.DefermentEnd = body.Timespec()
	if h.Version >= 2 {
		t.State = TrashState(body.U8())
	}
	return t
}

// DecodeTrashSpec decodes a trash_get reply (or an rbd_trash omap value).
func DecodeTrashSpec(b []byte) (TrashSpec, error) {
	d := encoding.NewDecoder(b)
	t := decodeTrashSpecFrom(d)
	return t, finish("trash_get", d)
}

// trashAddArgs: string id, TrashImageSpec.
func trashAddArgs(id string, t TrashSpec) []byte {
	e := enc()
	e.String(id)
	encodeTrashSpec(e, t)
	return e.B
}

// trashListArgs: string start_after, u64 max_return.
func trashListArgs(start string, max uint64) []byte { return metadataListArgs(start, max) }

// decodeTrashList: map<string id, TrashImageSpec>.
func decodeTrashList(b []byte) (map[string]TrashSpec, error) {
	d := encoding.NewDecoder(b)
	n := d.Count(4 + 6)
	m := make(map[string]TrashSpec, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = decodeTrashSpecFrom(d)
	}
	return m, finish("trash_list", d)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dirRenameArgs: string src, string dest, string id (dir_rename_image).
func dirRenameArgs(src, dst, id string) []byte {
	e := enc()
	e.String(src)
	e.String(dst)
	e.String(id)
	return e.B
}
