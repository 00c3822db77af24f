package controllerserver

import (
	"context"
	"encoding/json"
	"errors"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// The journal this driver wrote before it adopted ceph-csi's (package
// internal/journal), still read so that volumes and snapshots made then
// keep working; nothing new is written in it. The volume journal object
// csi.volumes.<instance> held "csi.volume.<request name>" → volumeRecord
// (JSON) and "csi.image.<image name>" → request name; the snapshot journal
// csi.snaps.<instance> held "csi.snap.<request name>" → snapRecord (JSON)
// and "csi.snapid.<image>@<snap>" → request name. Both live in the pool of
// the image they describe, in its default namespace; legacy volume and
// snapshot ids (csiceph's "v1."/"s1.") name the image and snapshot.
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
	// UUID is the journal uuid of a volume in ceph-csi's format (never
	// in a legacy record).
	UUID string `json:"-"`
}

type snapRecord struct {
	Source  string `json:"source"` // source volume id
	Snap    string `json:"snap"`
	Size    uint64 `json:"size"`
	Created int64  `json:"created"` // unix nanoseconds
}

type legacyJournal struct {
	io  *rados.IOContext
	oid string
}

func (j legacyJournal) get(ctx context.Context, key string, v any) (bool, error) {
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

func (j legacyJournal) remove(ctx context.Context, keys ...string) error {
	err := j.io.RmOmapKeys(ctx, j.oid, keys...)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

func (j legacyJournal) all(ctx context.Context, prefix string) (map[string][]byte, error) {
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
func (j legacyJournal) forget(ctx context.Context, reverseKey, forwardPrefix string) error {
	var name string
	found, err := j.get(ctx, reverseKey, &name)
	if err != nil || !found {
		return err
	}
	return j.remove(ctx, reverseKey, forwardPrefix+name)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
