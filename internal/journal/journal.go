package journal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados"
)

// Keys of the per-volume and per-snapshot objects (ceph-csi's
// internal/journal/voljournal.go).
const (
	KeyVolName        = "csi.volname"
	KeySnapName       = "csi.snapname"
	KeyImageName      = "csi.imagename"
	KeyImageID        = "csi.imageid"
	KeySource         = "csi.source" // snapshots: the source volume's image name
	KeyOwner          = "csi.volume.owner"
	KeyEncryptKMS     = "csi.volume.encryptKMS"
	KeyEncryptionType = "csi.volume.encryptionType"
	KeyJournalPool    = "csi.journalpool"
)

// Keys only csi-gorbd writes (ceph-csi reads the keys it knows and keeps
// or deletes the object whole, so it neither minds nor loses them).
const (
	// KeyContentSource is the id of the volume or snapshot a volume was
	// made from (a repeated CreateVolume must name the same).
	KeyContentSource = "csi.gorbd.contentsource"
	// KeySnapKind is "native" for csi-gorbd's snapshots: an RBD snapshot
	// called csi.imagename on the source image csi.source itself, not an
	// image of that name carrying it (ceph-csi's layout).
	KeySnapKind = "csi.gorbd.snapshot"
	// KeySourceVolume is the volume id a native snapshot was taken of.
	KeySourceVolume = "csi.gorbd.sourcevolume"
	// KeyGroupSources lists the source volume ids of a volume group
	// snapshot (sorted, comma-separated): a repeated request must name
	// the same.
	KeyGroupSources = "csi.gorbd.groupsources"
	// KeyGroupMembers lists the snapshot ids of a volume group
	// snapshot's members (comma-separated, in KeyGroupSources' order).
	KeyGroupMembers = "csi.gorbd.groupmembers"
	// KeyGroupSnapshot is, on a member's entry, the id of the volume
	// group snapshot it belongs to.
	KeyGroupSnapshot = "csi.gorbd.groupsnapshot"
)

// KeySnapKind's values.
const (
	// SnapKindNative: csi-gorbd's snapshots.
	SnapKindNative = "native"
	// SnapKindGroup: a volume group snapshot, csi.imagename being the
	// RBD group that holds its group snapshot.
	SnapKindGroup = "group"
	// SnapKindGroupMember: one volume's snapshot of a volume group
	// snapshot, csi.imagename being the name of the group-namespace
	// snapshot on csi.source (a native snapshot otherwise).
	SnapKindGroupMember = "group-member"
)

// Kind is volumes or snapshots.
type Kind struct {
	dir, entry, nameKey, defaultPrefix string
}

// The two journals.
var (
	Volumes   = Kind{dir: "csi.volumes.", entry: "csi.volume.", nameKey: KeyVolName, defaultPrefix: "csi-vol-"}
	Snapshots = Kind{dir: "csi.snaps.", entry: "csi.snap.", nameKey: KeySnapName, defaultPrefix: "csi-snap-"}
)

// ErrNotFound: no such directory key or per-request object.
var ErrNotFound = errors.New("journal: not found")

// ErrConflict: the directory names an object that belongs to another
// request name.
var ErrConflict = errors.New("journal: entry belongs to another request")

// Journal is one kind of journal of one instance in one pool and
// namespace.
type Journal struct {
	IO       *rados.IOContext
	Instance string // "" is "default"
	Kind     Kind
}

// DirObject is the directory object's name.
func (j Journal) DirObject() string {
	inst := j.Instance
	if inst == "" {
		inst = "default"
	}
	return j.Kind.dir + inst
}

// EntryObject is the name of the object of uuid.
func (j Journal) EntryObject(uuid string) string { return j.Kind.entry + uuid }

// DirKey is the directory key of a request name.
func (j Journal) DirKey(name string) string { return j.Kind.entry + name }

// DirValue is a directory entry: a uuid (PoolID -1, or the pool of the
// image when it is not the journal's), or a legacy value.
type DirValue struct {
	UUID   string
	PoolID int64
	// Legacy is a value csi-gorbd wrote before (JSON); UUID is empty then.
	Legacy []byte
}

// parseDirValue reads "<uuid>" or "<16 hex pool>/<uuid>"; anything else
// is legacy.
func parseDirValue(b []byte) DirValue {
	s := string(b)
	if pool, uuid, ok := strings.Cut(s, "/"); ok && len(pool) == 16 && validUUID(uuid) {
		if n, err := strconv.ParseUint(pool, 16, 64); err == nil && int64(n) >= 0 {
			return DirValue{UUID: uuid, PoolID: int64(n)}
		}
	}
	if validUUID(s) {
		return DirValue{UUID: s, PoolID: -1}
	}
	return DirValue{PoolID: -1, Legacy: b}
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Lookup returns the directory entry of a request name (ErrNotFound if
// none).
func (j Journal) Lookup(ctx context.Context, name string) (DirValue, error) {
	key := j.DirKey(name)
	m, err := j.IO.GetOmapValuesByKeys(ctx, j.DirObject(), key)
	if errors.Is(err, syscall.ENOENT) {
		return DirValue{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return DirValue{}, err
	}
	b, ok := m[key]
	if !ok {
		return DirValue{}, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return parseDirValue(b), nil
}

// List returns every directory entry by request name.
func (j Journal) List(ctx context.Context) (map[string]DirValue, error) {
	m, err := j.IO.GetAllOmapValues(ctx, j.DirObject(), j.Kind.entry)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]DirValue, len(m))
	for k, v := range m {
		out[strings.TrimPrefix(k, j.Kind.entry)] = parseDirValue(v)
	}
	return out, nil
}

// Entry is the per-request object of a uuid.
type Entry struct {
	UUID  string
	Attrs map[string]string
}

// Name is the request name the entry was made for.
func (j Journal) name(e Entry) string { return e.Attrs[j.Kind.nameKey] }

// Name is the request name of a volume or snapshot entry.
func (e Entry) Name() string {
	if n := e.Attrs[KeyVolName]; n != "" {
		return n
	}
	return e.Attrs[KeySnapName]
}

// ImageName is csi.imagename; entries without it (older ceph-csi) name
// the image <default prefix><uuid>.
func (j Journal) ImageName(e Entry) string {
	if n := e.Attrs[KeyImageName]; n != "" {
		return n
	}
	return j.Kind.defaultPrefix + e.UUID
}

// Entry reads the object of uuid (ErrNotFound if it does not exist).
func (j Journal) Entry(ctx context.Context, uuid string) (Entry, error) {
	m, err := j.IO.GetAllOmapValues(ctx, j.EntryObject(uuid), "")
	if errors.Is(err, syscall.ENOENT) {
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, j.EntryObject(uuid))
	}
	if err != nil {
		return Entry{}, err
	}
	e := Entry{UUID: uuid, Attrs: make(map[string]string, len(m))}
	for k, v := range m {
		e.Attrs[k] = string(v)
	}
	return e, nil
}

// Find returns the entry of a request name: ErrNotFound when there is
// none, or when the directory points to an object that is gone or never
// got its keys (a reservation a crash cut short, which Find removes so the
// request starts over). An object of another request name is ErrConflict.
func (j Journal) Find(ctx context.Context, name string) (DirValue, Entry, error) {
	dv, err := j.Lookup(ctx, name)
	if err != nil || dv.Legacy != nil {
		return dv, Entry{}, err
	}
	e, err := j.Entry(ctx, dv.UUID)
	if errors.Is(err, ErrNotFound) || err == nil && j.name(e) == "" {
		if rerr := j.removeDirKey(ctx, name, dv.UUID); rerr != nil {
			return dv, Entry{}, rerr
		}
		return dv, Entry{}, fmt.Errorf("%w: %s (stale directory key removed)", ErrNotFound, j.DirKey(name))
	}
	if err != nil {
		return dv, Entry{}, err
	}
	if n := j.name(e); n != name {
		return dv, e, fmt.Errorf("%w: %s is %q's, not %q's", ErrConflict, j.EntryObject(e.UUID), n, name)
	}
	return dv, e, nil
}

// Reserve makes a new entry for a request name with attrs (the request
// name key is added): a new uuid's object, created exclusively with its
// keys in one operation (a uuid taken already is retried with another),
// then the directory key. uuid, when not "", is the uuid to use.
func (j Journal) Reserve(ctx context.Context, name string, attrs map[string]string, uuid string) (Entry, error) {
	kv := map[string][]byte{j.Kind.nameKey: []byte(name)}
	for k, v := range attrs {
		kv[k] = []byte(v)
	}
	const attempts = 5
	for i := 0; ; i++ {
		id := uuid
		if id == "" {
			id = NewUUID()
		}
		imageKey := ""
		if _, ok := attrs[KeyImageName]; !ok {
			imageKey = j.Kind.defaultPrefix + id
			kv[KeyImageName] = []byte(imageKey)
		}
		w := rados.NewWriteOp()
		w.Create(true)
		w.SetOmap(kv)
		err := w.Operate(ctx, j.IO, j.EntryObject(id))
		if errors.Is(err, syscall.EEXIST) && uuid == "" && i+1 < attempts {
			continue
		}
		if err != nil {
			return Entry{}, fmt.Errorf("journal: reserving %s: %w", j.EntryObject(id), err)
		}
		if err := j.IO.SetOmap(ctx, j.DirObject(), map[string][]byte{j.DirKey(name): []byte(id)}); err != nil {
			_ = j.IO.Remove(ctx, j.EntryObject(id))
			return Entry{}, fmt.Errorf("journal: %s: %w", j.DirObject(), err)
		}
		e := Entry{UUID: id, Attrs: make(map[string]string, len(kv))}
		for k, v := range kv {
			e.Attrs[k] = string(v)
		}
		return e, nil
	}
}

// SetAttrs adds or replaces keys of the object of uuid (which must exist).
func (j Journal) SetAttrs(ctx context.Context, uuid string, attrs map[string]string) error {
	kv := make(map[string][]byte, len(attrs))
	for k, v := range attrs {
		kv[k] = []byte(v)
	}
	// SetOmap would make a missing object: check it first.
	if _, err := j.IO.Stat(ctx, j.EntryObject(uuid)); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("%w: %s", ErrNotFound, j.EntryObject(uuid))
		}
		return err
	}
	return j.IO.SetOmap(ctx, j.EntryObject(uuid), kv)
}

// Release removes the object of uuid and the request name's directory key
// if it still points to uuid. Both already gone is no error.
func (j Journal) Release(ctx context.Context, name, uuid string) error {
	if err := j.IO.Remove(ctx, j.EntryObject(uuid)); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	if name == "" {
		return nil
	}
	return j.removeDirKey(ctx, name, uuid)
}

// removeDirKey removes the directory key of name if its value is uuid.
func (j Journal) removeDirKey(ctx context.Context, name, uuid string) error {
	dv, err := j.Lookup(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if dv.UUID != uuid {
		return nil
	}
	err = j.IO.RmOmapKeys(ctx, j.DirObject(), j.DirKey(name))
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// NewUUID returns a random version-4 UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
