package csiceph

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

const (
	volumeIDVersion   = "v1"
	snapshotIDVersion = "s1"
)

// VolumeID names an RBD image: cluster, pool (by id) and image name.
type VolumeID struct {
	ClusterID string
	PoolID    int64
	Image     string
}

// SnapshotID names a snapshot of an RBD image.
type SnapshotID struct {
	VolumeID
	Snap string
}

// String encodes the id as "v1.<base64url(cluster)>.<pool hex>.<image>".
// '.' never occurs in base64url or hex, so the image name, which comes
// last, may contain anything.
func (v VolumeID) String() string {
	return volumeIDVersion + "." + v.body()
}

func (v VolumeID) body() string {
	return base64.RawURLEncoding.EncodeToString([]byte(v.ClusterID)) + "." +
		strconv.FormatInt(v.PoolID, 16) + "." + v.Image
}

// String encodes the id as "s1.<base64url(snap)>.<base64url(cluster)>.<pool hex>.<image>"
// (the snapshot name is base64url, so '.' can only be a separator).
func (s SnapshotID) String() string {
	return snapshotIDVersion + "." + base64.RawURLEncoding.EncodeToString([]byte(s.Snap)) + "." + s.body()
}

// volumeCodecs and snapshotCodecs decode the id formats this driver
// accepts, by version prefix (the text before the first '.'). A handle
// format of another driver would be one more entry.
var (
	volumeCodecs   = map[string]func(rest string) (VolumeID, error){volumeIDVersion: parseBody}
	snapshotCodecs = map[string]func(rest string) (SnapshotID, error){snapshotIDVersion: parseSnapshotV1}
)

func parseBody(rest string) (VolumeID, error) {
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) != 3 || parts[2] == "" {
		return VolumeID{}, ErrBadID
	}
	c, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(c) == 0 {
		return VolumeID{}, ErrBadID
	}
	pool, err := strconv.ParseInt(parts[1], 16, 64)
	if err != nil || pool < 0 {
		return VolumeID{}, ErrBadID
	}
	return VolumeID{ClusterID: string(c), PoolID: pool, Image: parts[2]}, nil
}

func parseSnapshotV1(rest string) (SnapshotID, error) {
	enc, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return SnapshotID{}, ErrBadID
	}
	snap, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(snap) == 0 {
		return SnapshotID{}, ErrBadID
	}
	v, err := parseBody(rest)
	if err != nil {
		return SnapshotID{}, err
	}
	return SnapshotID{VolumeID: v, Snap: string(snap)}, nil
}

// parseID splits off the version prefix and runs its codec.
func parseID[T any](s string, codecs map[string]func(string) (T, error)) (T, error) {
	var zero T
	version, rest, ok := strings.Cut(s, ".")
	parse := codecs[version]
	if !ok || parse == nil {
		return zero, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	id, err := parse(rest)
	if err != nil {
		return zero, fmt.Errorf("%w: %q", err, s)
	}
	return id, nil
}

// ParseVolumeID decodes a VolumeID.String.
func ParseVolumeID(s string) (VolumeID, error) { return parseID(s, volumeCodecs) }

// ParseSnapshotID decodes a SnapshotID.String.
func ParseSnapshotID(s string) (SnapshotID, error) { return parseID(s, snapshotCodecs) }
