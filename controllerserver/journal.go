package controllerserver

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Journal keys. The volume journal object csi.volumes.<instance> holds
// "csi.volume.<request name>" → volumeRecord and "csi.image.<image name>"
// → request name; the snapshot journal csi.snaps.<instance> holds
// "csi.snap.<request name>" → snapRecord and "csi.snapid.<image>@<snap>"
// → request name. Both live in the pool of the image they describe.
const (
	volKeyPrefix    = "csi.volume."
	imageKeyPrefix  = "csi.image."
	snapKeyPrefix   = "csi.snap."
	snapIDKeyPrefix = "csi.snapid."
)

// VolumeJournalObject returns the volume journal's object name.
func VolumeJournalObject(instance string) string { return "csi.volumes." + instance }

// SnapshotJournalObject returns the snapshot journal's object name.
func SnapshotJournalObject(instance string) string { return "csi.snaps." + instance }

type volumeRecord struct {
	Image  string `json:"image"`
	Size   uint64 `json:"size"`
	Source string `json:"source,omitempty"` // content source: volume or snapshot id
	// CloneSnap is the temporary snapshot on the source volume a volume
	// clone hangs from; it is removed with the clone.
	CloneSnap string `json:"cloneSnap,omitempty"`
}

type snapRecord struct {
	Source  string `json:"source"` // source volume id
	Snap    string `json:"snap"`
	Size    uint64 `json:"size"`
	Created int64  `json:"created"` // unix nanoseconds
}

type journal struct {
	io  *rados.IOContext
	oid string
}

func (j journal) get(ctx context.Context, key string, v any) (bool, error) {
	m, err := j.io.GetOmapValuesByKeys(ctx, j.oid, key)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b, ok := m[key]
	if !ok {
		return false, nil
	}
	if s, isStr := v.(*string); isStr {
		*s = string(b)
		return true, nil
	}
	return true, json.Unmarshal(b, v)
}

func (j journal) put(ctx context.Context, kv map[string]any) error {
	m := make(map[string][]byte, len(kv))
	for k, v := range kv {
		if s, ok := v.(string); ok {
			m[k] = []byte(s)
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		m[k] = b
	}
	return j.io.SetOmap(ctx, j.oid, m)
}

func (j journal) remove(ctx context.Context, keys ...string) error {
	err := j.io.RmOmapKeys(ctx, j.oid, keys...)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

func (j journal) all(ctx context.Context, prefix string) (map[string][]byte, error) {
	m, err := j.io.GetAllOmapValues(ctx, j.oid, prefix)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	return m, err
}

// snapIDKey is the snapshot journal key that maps image@snap back to its
// request name.
func snapIDKey(image, snap string) string { return snapIDKeyPrefix + image + "@" + snap }

// forget removes a pair of journal entries found by their reverse key
// (image or snapshot → request name): the reverse key and forwardPrefix
// followed by the request name. Entries already gone are no error.
func (j journal) forget(ctx context.Context, reverseKey, forwardPrefix string) error {
	var name string
	found, err := j.get(ctx, reverseKey, &name)
	if err != nil || !found {
		return err
	}
	return j.remove(ctx, reverseKey, forwardPrefix+name)
}

// reserve writes the journal entries kv of a request (what names it). A
// failed write may still land on the OSD: it is taken back as a cleanup.
func (se *session) reserve(ctx context.Context, j journal, what string, kv map[string]any) error {
	err := j.put(ctx, kv)
	if err != nil {
		keys := slices.Collect(maps.Keys(kv))
		se.s.cleanup(ctx, "the journal entry of "+what+" (a retry of the request uses it)",
			func(ctx context.Context) error { return j.remove(ctx, keys...) })
		return se.fail(err)
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
