package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
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

// Store is the state directory.
type Store struct {
	Dir string
}

// ErrNoRecord is returned when no record matches a device or id.
var ErrNoRecord = errors.New("attach: no such attachment record")

func (s Store) path(index int) string {
	return filepath.Join(s.Dir, fmt.Sprintf("nbd%d.json", index))
}

func (s Store) ensureDir() error {
	if s.Dir == "" {
		return errors.New("attach: no state directory")
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(s.Dir, 0o700)
}

// Save writes r atomically: temporary file, fsync, rename, fsync dir.
func (s Store) Save(r *Record) error {
	if err := s.ensureDir(); err != nil {
		return err
	}
	r.Version = recordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(s.Dir, ".tmp-nbd*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("attach: save record nbd%d: %w", r.Index, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("attach: save record nbd%d: %w", r.Index, err)
	}
	if err := os.Rename(tmp, s.path(r.Index)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("attach: save record nbd%d: %w", r.Index, err)
	}
	return syncDir(s.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Remove deletes the record of device index; a missing record is no error.
func (s Store) Remove(index int) error {
	err := os.Remove(s.path(index))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err == nil {
		return syncDir(s.Dir)
	}
	return nil
}

// Load reads the record of device index.
func (s Store) Load(index int) (*Record, error) {
	b, err := os.ReadFile(s.path(index))
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
	ents, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []*Record
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "nbd") || !strings.HasSuffix(n, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.Dir, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := decodeRecord(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if n != fmt.Sprintf("nbd%d.json", r.Index) {
			errs = append(errs, fmt.Errorf("%s: record says nbd%d", n, r.Index))
			continue
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	return recs, errors.Join(errs...)
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
