package nodeserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// volumeRecordVersion is bumped when volumeRecord changes incompatibly.
const volumeRecordVersion = 1

// maxRecordSize bounds what is read from a record file.
const maxRecordSize = 1 << 20

// volumeRecord is what the node keeps about a staged volume (see the
// package documentation: it holds the Ceph key on purpose).
type volumeRecord struct {
	Version  int    `json:"version"`
	VolumeID string `json:"volumeID"`
	// ClusterID, PoolID and Image come from the volume id.
	ClusterID string `json:"clusterID"`
	PoolID    int64  `json:"poolID"`
	Image     string `json:"image"`
	// UserID and UserKey are the node-stage secrets.
	UserID  string `json:"userID"`
	UserKey string `json:"userKey"`

	StagingPath string `json:"stagingPath"`
	Block       bool   `json:"block,omitempty"`
	FSType      string `json:"fsType,omitempty"`
	AccessMode  int32  `json:"accessMode"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	// Device is /dev/nbdN once attached.
	Device string `json:"device,omitempty"`
	// Targets are the published target paths.
	Targets []string `json:"targets,omitempty"`
}

// credentials are the node-stage secrets the record keeps.
func (r *volumeRecord) credentials() csiceph.Credentials {
	return csiceph.Credentials{User: r.UserID, Key: r.UserKey}
}

func (r *volumeRecord) hasTarget(t string) bool { return slices.Contains(r.Targets, t) }

func (r *volumeRecord) dropTarget(t string) {
	r.Targets = slices.DeleteFunc(r.Targets, func(s string) bool { return s == t })
}

// volumeStore is the volumes/ directory.
type volumeStore struct {
	dir string
}

func (s volumeStore) path(volumeID string) string {
	h := sha256.Sum256([]byte(volumeID))
	return filepath.Join(s.dir, hex.EncodeToString(h[:12])+".json")
}

func (s volumeStore) load(volumeID string) (*volumeRecord, error) {
	b, err := readBounded(s.path(volumeID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", csiceph.ErrNotStaged, volumeID)
	}
	if err != nil {
		return nil, err
	}
	r, err := decodeVolumeRecord(b)
	if err != nil {
		return nil, err
	}
	if r.VolumeID != volumeID {
		return nil, fmt.Errorf("nodeserver: record %s holds volume %q", s.path(volumeID), r.VolumeID)
	}
	return r, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxRecordSize {
		return nil, fmt.Errorf("nodeserver: %s: %d bytes is too large for a record", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		return nil, err
	}
	return b, nil
}

func decodeVolumeRecord(b []byte) (*volumeRecord, error) {
	var r volumeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("nodeserver: bad volume record: %w", err)
	}
	if r.Version != volumeRecordVersion {
		return nil, fmt.Errorf("nodeserver: volume record version %d not supported", r.Version)
	}
	if r.VolumeID == "" || r.Image == "" || r.ClusterID == "" || r.PoolID < 0 {
		return nil, errors.New("nodeserver: bad volume record: volume id, cluster, pool and image are required")
	}
	return &r, nil
}

// save writes r atomically (temporary file, fsync, rename, fsync of the
// directory), mode 0600 in a 0700 directory.
func (s volumeStore) save(r *volumeRecord) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return err
	}
	r.Version = volumeRecordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, ".tmp-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("nodeserver: saving volume record: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("nodeserver: saving volume record: %w", err)
	}
	if err := os.Rename(tmp, s.path(r.VolumeID)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("nodeserver: saving volume record: %w", err)
	}
	return syncDir(s.dir)
}

func (s volumeStore) remove(volumeID string) error {
	err := os.Remove(s.path(volumeID))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(s.dir)
}

// list returns every readable record; unreadable ones are reported in the
// error without hiding the others.
func (s volumeStore) list() ([]*volumeRecord, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*volumeRecord
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := readBounded(filepath.Join(s.dir, e.Name()))
		if err == nil {
			var r *volumeRecord
			if r, err = decodeVolumeRecord(b); err == nil {
				out = append(out, r)
				continue
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
	}
	return out, errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
