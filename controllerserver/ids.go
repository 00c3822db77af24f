package controllerserver

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadID: a volume or snapshot id this driver did not make.
var ErrBadID = errors.New("controllerserver: malformed id")

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

// String encodes the id as "s1.<base64url(cluster)>.<pool hex>.<image>@<snap>"
// where the snapshot name is base64url too (so '@' can only be the separator).
func (s SnapshotID) String() string {
	return snapshotIDVersion + "." + base64.RawURLEncoding.EncodeToString([]byte(s.Snap)) + "." + s.body()
}

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

// ParseVolumeID decodes a VolumeID.String.
func ParseVolumeID(s string) (VolumeID, error) {
	rest, ok := strings.CutPrefix(s, volumeIDVersion+".")
	if !ok {
		return VolumeID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	v, err := parseBody(rest)
	if err != nil {
		return VolumeID{}, fmt.Errorf("%w: %q", err, s)
	}
	return v, nil
}

// ParseSnapshotID decodes a SnapshotID.String.
func ParseSnapshotID(s string) (SnapshotID, error) {
	rest, ok := strings.CutPrefix(s, snapshotIDVersion+".")
	if !ok {
		return SnapshotID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	enc, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return SnapshotID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	snap, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(snap) == 0 {
		return SnapshotID{}, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	v, err := parseBody(rest)
	if err != nil {
		return SnapshotID{}, fmt.Errorf("%w: %q", err, s)
	}
	return SnapshotID{VolumeID: v, Snap: string(snap)}, nil
}
