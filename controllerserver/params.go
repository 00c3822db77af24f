package controllerserver

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// ClusterInfo is one entry of the clusters file (ceph-csi's config.json
// subset).
type ClusterInfo struct {
	ClusterID string   `json:"clusterID"`
	Monitors  []string `json:"monitors"`
}

// LoadClusters reads a clusters file: a JSON list of ClusterInfo.
func LoadClusters(path string) (map[string]ClusterInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseClusters(b)
}

// ParseClusters decodes the clusters file contents.
func ParseClusters(b []byte) (map[string]ClusterInfo, error) {
	var list []ClusterInfo
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	m := make(map[string]ClusterInfo, len(list))
	for i, c := range list {
		if c.ClusterID == "" || len(c.Monitors) == 0 {
			return nil, fmt.Errorf("clusters file: entry %d needs clusterID and monitors", i)
		}
		if _, dup := m[c.ClusterID]; dup {
			return nil, fmt.Errorf("clusters file: duplicate clusterID %q", c.ClusterID)
		}
		m[c.ClusterID] = c
	}
	return m, nil
}

// Credentials are the Ceph user and key from the request secrets.
type Credentials struct {
	User, Key string
}

// CredentialsFrom reads userID/userKey from CSI secrets.
func CredentialsFrom(secrets map[string]string) (Credentials, error) {
	c := Credentials{User: secrets["userID"], Key: secrets["userKey"]}
	if c.User == "" || c.Key == "" {
		return c, fmt.Errorf("secrets must carry userID and userKey")
	}
	return c, nil
}

// VolumeParams are the StorageClass parameters the controller uses.
type VolumeParams struct {
	ClusterID  string
	Pool       string
	DataPool   string
	Features   uint64
	NamePrefix string
	SnapPrefix string
	// MaxCloneDepth overrides the driver's clone depth limit (0: keep).
	MaxCloneDepth int
}

// ParseVolumeParams validates StorageClass parameters. Keys it does not
// know (fstype, mkfsOptions, csi.storage.k8s.io/*) are the node's business
// and are ignored here.
func ParseVolumeParams(p map[string]string) (VolumeParams, error) {
	v := VolumeParams{
		ClusterID:  p["clusterID"],
		Pool:       p["pool"],
		DataPool:   p["dataPool"],
		NamePrefix: p["volumeNamePrefix"],
		SnapPrefix: p["snapshotNamePrefix"],
	}
	if v.ClusterID == "" {
		return v, fmt.Errorf("parameter clusterID is required")
	}
	if v.Pool == "" {
		return v, fmt.Errorf("parameter pool is required")
	}
	if v.NamePrefix == "" {
		v.NamePrefix = "csi-vol-"
	}
	if v.SnapPrefix == "" {
		v.SnapPrefix = "csi-snap-"
	}
	for _, pre := range []string{v.NamePrefix, v.SnapPrefix} {
		if strings.ContainsAny(pre, "/@") {
			return v, fmt.Errorf("name prefix %q must not contain '/' or '@'", pre)
		}
	}
	if d := p["maxCloneDepth"]; d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxCollectDepth/2 {
			return v, fmt.Errorf("parameter maxCloneDepth %q must be a number from 1 to %d", d, maxCollectDepth/2)
		}
		v.MaxCloneDepth = n
	}
	feat := p["imageFeatures"]
	if feat == "" {
		feat = "layering"
	}
	var names []string
	for _, f := range strings.Split(feat, ",") {
		if f = strings.TrimSpace(f); f != "" {
			names = append(names, f)
		}
	}
	f, err := rbd.ParseFeatures(names...)
	if err != nil {
		return v, fmt.Errorf("parameter imageFeatures: %w", err)
	}
	if f&rbd.FeatureLayering == 0 {
		return v, fmt.Errorf("parameter imageFeatures must include layering")
	}
	v.Features = f
	return v, nil
}

const mib = 1 << 20

// DefaultVolumeSize is used when a request gives no capacity.
const DefaultVolumeSize = 1 << 30

// MaxVolumeSize is the largest volume the controller makes: librbd's
// object map limit (256,000,000 objects) with the default 4 MiB objects,
// about 976 TiB. Bigger images cannot have an object map and are
// impractical to remove.
const MaxVolumeSize = 256000000 * (4 << 20)

// RoundCapacity picks the image size for a capacity range: the required
// bytes (or DefaultVolumeSize, capped by the limit) rounded up to a MiB.
// It fails when the rounded size exceeds the limit.
func RoundCapacity(r *csi.CapacityRange) (uint64, error) {
	var req, lim int64
	if r != nil {
		req, lim = r.GetRequiredBytes(), r.GetLimitBytes()
	}
	if req < 0 || lim < 0 {
		return 0, fmt.Errorf("negative capacity")
	}
	if lim != 0 && req > lim {
		return 0, fmt.Errorf("required_bytes %d exceeds limit_bytes %d", req, lim)
	}
	size := uint64(req)
	if size == 0 {
		size = DefaultVolumeSize
		if lim != 0 && uint64(lim) < size {
			size = uint64(lim)
		}
	}
	if size > MaxVolumeSize {
		return 0, fmt.Errorf("required_bytes %d is over the largest volume this driver makes (%d bytes, 976 TiB)", size, uint64(MaxVolumeSize))
	}
	size = (size + mib - 1) / mib * mib
	if lim != 0 && size > uint64(lim) {
		return 0, fmt.Errorf("size %d rounded up to whole MiB exceeds limit_bytes %d", size, lim)
	}
	return size, nil
}

// fits reports whether an existing size satisfies a capacity range.
func fits(size uint64, r *csi.CapacityRange) bool {
	if r == nil {
		return true
	}
	if uint64(r.GetRequiredBytes()) > size {
		return false
	}
	return r.GetLimitBytes() == 0 || size <= uint64(r.GetLimitBytes())
}

// CheckCapabilities accepts what an RBD image can honour: any single-node
// mode, multi-node read-only, and multi-node multi-writer for raw block
// only (a filesystem would be corrupted by two writers).
func CheckCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return fmt.Errorf("volume capabilities are required")
	}
	for _, c := range caps {
		block := c.GetBlock() != nil
		if !block && c.GetMount() == nil {
			return fmt.Errorf("access type must be mount or block")
		}
		if c.GetAccessMode() == nil {
			return fmt.Errorf("access mode is required")
		}
		switch m := c.GetAccessMode().GetMode(); m {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		case csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
			if !block {
				return fmt.Errorf("access mode %s needs access type block", m)
			}
		default:
			return fmt.Errorf("access mode %s is not supported", m)
		}
	}
	return nil
}

// newName returns prefix followed by a random version-4 UUID.
func newName(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
