package nodeserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/records"
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
	// ClusterID, PoolID, Namespace and Image are where the volume id led
	// (a ceph-csi handle through its journal entry).
	ClusterID string `json:"clusterID"`
	PoolID    int64  `json:"poolID"`
	Namespace string `json:"namespace,omitempty"`
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
	// Encryption is set for an encrypted volume: its volume key, sealed
	// (see sealer.go).
	Encryption *encryptionRecord `json:"encryption,omitempty"`

	// Foreign is set for a volume ceph-csi's node plugin staged (see
	// foreign.go): its mapper (krbd or rbd-nbd); ForeignMount is where it
	// mounted it (<staging path>/<volume id>), ForeignPool the pool named
	// in its stash, UnmapOptions its unmapOptions. Device is the kernel
	// device it made; ClusterID and PoolID are unknown.
	Foreign      string `json:"foreign,omitempty"`
	ForeignMount string `json:"foreignMount,omitempty"`
	ForeignPool  string `json:"foreignPool,omitempty"`
	UnmapOptions string `json:"unmapOptions,omitempty"`

	// PVName is the PersistentVolume's name, when the volume context
	// carries it (the per-volume metrics' label).
	PVName string `json:"pvName,omitempty"`
}

// mountSource is what NodePublishVolume bind-mounts: the staging path, or
// for a foreign volume ceph-csi's mount below it (block: the device).
func (r *volumeRecord) mountSource() string {
	switch {
	case r.Block:
		return r.Device
	case r.Foreign != "":
		return r.ForeignMount
	}
	return r.StagingPath
}

// credentials are the node-stage secrets the record keeps.
func (r *volumeRecord) credentials() csiceph.Credentials {
	return csiceph.Credentials{User: r.UserID, Key: r.UserKey}
}

func (r *volumeRecord) hasTarget(t string) bool { return slices.Contains(r.Targets, t) }

func (r *volumeRecord) dropTarget(t string) {
	r.Targets = slices.DeleteFunc(r.Targets, func(s string) bool { return s == t })
}

// staged returns the record of a staged volume (adopting one ceph-csi's
// node plugin staged at staging, see foreign.go), with the status an RPC
// answers when there is none (NotFound) or it cannot be read (Internal).
func (s *Server) staged(volID, staging string) (*volumeRecord, error) {
	rec, err := s.loadOrAdopt(volID, staging)
	if errors.Is(err, csiceph.ErrNotStaged) {
		return nil, status.Errorf(codes.NotFound, "volume %q is not staged on this node", volID)
	}
	if _, ok := status.FromError(err); ok && err != nil {
		return nil, err
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "reading the state of volume %q: %v", volID, err)
	}
	return rec, nil
}

// stagedAt checks a request about a path of a staged volume (volume_id
// and volume_path are required) and returns the volume's record.
func (s *Server) stagedAt(volID, path, staging string) (*volumeRecord, error) {
	if err := csiceph.Required("volume_id", volID, "volume_path", path); err != nil {
		return nil, err
	}
	return s.staged(volID, staging)
}

// volumeStore is the volumes/ directory: one record file per volume,
// named by a hash of the volume id, kept crash-safe by package
// internal/records.
type volumeStore struct {
	dir string
}

func (s volumeStore) records() records.Dir { return records.Dir{Path: s.dir, MaxSize: maxRecordSize} }

func recordFile(volumeID string) string {
	h := sha256.Sum256([]byte(volumeID))
	return hex.EncodeToString(h[:12]) + ".json"
}

func (s volumeStore) path(volumeID string) string { return filepath.Join(s.dir, recordFile(volumeID)) }

func (s volumeStore) load(volumeID string) (*volumeRecord, error) {
	b, err := s.records().Read(recordFile(volumeID))
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

func decodeVolumeRecord(b []byte) (*volumeRecord, error) {
	var r volumeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("nodeserver: bad volume record: %w", err)
	}
	if r.Version != volumeRecordVersion {
		return nil, fmt.Errorf("nodeserver: volume record version %d not supported", r.Version)
	}
	if r.VolumeID == "" || r.Image == "" || (r.Foreign == "" && r.ClusterID == "") || r.PoolID < 0 {
		return nil, errors.New("nodeserver: bad volume record: volume id, cluster, pool and image are required")
	}
	return &r, nil
}

// save writes r atomically (temporary file, fsync, rename, fsync of the
// directory), mode 0600 in a 0700 directory.
func (s volumeStore) save(r *volumeRecord) error {
	r.Version = volumeRecordVersion
	if err := s.records().WriteJSON(recordFile(r.VolumeID), r); err != nil {
		return fmt.Errorf("nodeserver: saving volume record: %w", err)
	}
	return nil
}

func (s volumeStore) remove(volumeID string) error { return s.records().Remove(recordFile(volumeID)) }

// list returns every readable record; unreadable ones are reported in the
// error without hiding the others.
func (s volumeStore) list() ([]*volumeRecord, error) {
	isRecord := func(n string) bool { return strings.HasSuffix(n, ".json") }
	return records.List(s.records(), isRecord, func(_ string, b []byte) (*volumeRecord, error) { return decodeVolumeRecord(b) })
}
