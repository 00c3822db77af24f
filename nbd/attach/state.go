package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/records"
)

// recordVersion is bumped when Record changes incompatibly.
const recordVersion = 1

// Record is the persistent description of one attached device.
type Record struct {
	Version int `json:"version"`
	// Index is the kernel device index: /dev/nbd<Index>.
	Index int `json:"index"`
	// ID is the backend identifier handed to the kernel (the volume id).
	ID string `json:"id"`
	// Image is the image spec string the backend factory understands, e.g.
	// "pool/image@snap" or "file:/var/lib/x.img". Never a secret.
	Image string `json:"image"`
	// Size is the export size in bytes at the last attach or resize.
	Size        int64 `json:"size"`
	BlockSize   int64 `json:"blockSize"`
	ReadOnly    bool  `json:"readOnly,omitempty"`
	Connections int   `json:"connections"`
	// TimeoutSeconds is NBD_ATTR_TIMEOUT (0: kernel default).
	TimeoutSeconds int64 `json:"timeoutSeconds,omitempty"`
	// DeadConnTimeoutSeconds is NBD_ATTR_DEAD_CONN_TIMEOUT.
	DeadConnTimeoutSeconds int64     `json:"deadConnTimeoutSeconds"`
	Created                time.Time `json:"created"`
}

// Device is the device node path, /dev/nbdN.
func (r *Record) Device() string { return "/dev/nbd" + strconv.Itoa(r.Index) }

// Store is the state directory: one record file per device, nbdN.json,
// kept crash-safe by package internal/records.
type Store struct {
	Dir string
}

// ErrNoRecord is returned when no record matches a device or id.
var ErrNoRecord = errors.New("attach: no such attachment record")

// staleTempAge is how old a temporary record file must be before New
// deletes it: several processes (nbd map) may share a state directory, and
// a write in flight must keep its file.
const staleTempAge = 10 * time.Minute

func (s Store) dir() records.Dir { return records.Dir{Path: s.Dir} }

func recordName(index int) string { return fmt.Sprintf("nbd%d.json", index) }

// Save writes r atomically: temporary file, fsync, rename, fsync dir.
func (s Store) Save(r *Record) error {
	if s.Dir == "" {
		return errors.New("attach: no state directory")
	}
	r.Version = recordVersion
	if err := s.dir().WriteJSON(recordName(r.Index), r); err != nil {
		return fmt.Errorf("attach: save record nbd%d: %w", r.Index, err)
	}
	return nil
}

// Remove deletes the record of device index; a missing record is no error.
func (s Store) Remove(index int) error { return s.dir().Remove(recordName(index)) }

// Load reads the record of device index.
func (s Store) Load(index int) (*Record, error) {
	b, err := s.dir().Read(recordName(index))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: nbd%d", ErrNoRecord, index)
	}
	if err != nil {
		return nil, err
	}
	return decodeRecord(b)
}

func decodeRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("attach: bad record: %w", err)
	}
	if r.Version != recordVersion {
		return nil, fmt.Errorf("attach: record version %d not supported", r.Version)
	}
	if r.Index < 0 || r.ID == "" || r.Size < 0 || r.Connections < 1 || r.Connections > maxConnections {
		return nil, fmt.Errorf("attach: bad record for nbd%d", r.Index)
	}
	return &r, nil
}

// List returns all records, ordered by device index. Unreadable files are
// reported in the error but do not hide the others.
func (s Store) List() ([]*Record, error) {
	isRecord := func(n string) bool { return strings.HasPrefix(n, "nbd") && strings.HasSuffix(n, ".json") }
	recs, err := records.List(s.dir(), isRecord, func(n string, b []byte) (*Record, error) {
		r, err := decodeRecord(b)
		if err == nil && n != recordName(r.Index) {
			return nil, fmt.Errorf("record says nbd%d", r.Index)
		}
		return r, err
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	return recs, err
}

// Find returns the record matching a device ("/dev/nbdN", "nbdN") or a
// backend identifier.
func (s Store) Find(deviceOrID string) (*Record, error) {
	recs, err := s.List()
	for _, r := range recs {
		if r.ID == deviceOrID || r.Device() == deviceOrID || "nbd"+strconv.Itoa(r.Index) == deviceOrID {
			return r, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%w: %s", ErrNoRecord, deviceOrID)
}
