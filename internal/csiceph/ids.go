package csiceph

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Volume and snapshot ids come in two forms.
//
// The handle of ceph-csi (its internal/util/volid.go, encoding version 1),
// which every new volume and snapshot gets, so that either driver finds
// the other's volumes:
//
//	0001-0024-<clusterID>-<pool id: 16 hex>-<uuid: 36>
//
// VVVV and LLLL are the encoding version and the clusterID's length as
// 16-bit big-endian hex, the pool id a 64-bit big-endian hex number (the
// pool of the image, or for a snapshot of the source image) and the uuid
// names the journal object csi.volume.<uuid> or csi.snap.<uuid> that says
// which image (and snapshot) it is. The clusterID may contain '-': its
// length delimits it. The RADOS namespace is not in the handle: it is the
// clusterID's rbd.radosNamespace in the clusters file, at every call.
//
// The legacy form this driver wrote before (still read, never written for
// new volumes): "v1.<base64url(cluster)>.<pool hex>.<image>" and
// "s1.<base64url(snap)>.<base64url(cluster)>.<pool hex>.<image>", which
// carry the image (and snapshot) name themselves, always in the pool's
// default namespace.

const (
	legacyVolumeVersion   = "v1"
	legacySnapshotVersion = "s1"

	// cephCSIEncoding is the only encoding version of ceph-csi's handles.
	cephCSIEncoding = 1
	// handleFixedLen is the length of a handle without its clusterID:
	// 4+1+4+1 + 1 + 16+1 + 36.
	handleFixedLen = 64
	// MaxHandleLen is the longest handle ceph-csi composes; it bounds the
	// clusterID to MaxHandleLen-handleFixedLen characters.
	MaxHandleLen = 128
	uuidLen      = 36
)

// MaxClusterIDLen is the longest clusterID a handle can carry.
const MaxClusterIDLen = MaxHandleLen - handleFixedLen

// VolumeID names a volume: its cluster, the pool (by id) holding its image
// and, in ceph-csi's form, the uuid of its journal entry; a legacy id names
// the image itself instead (UUID empty).
type VolumeID struct {
	ClusterID string
	PoolID    int64
	UUID      string // ceph-csi form: csi.volume.<UUID> (csi.snap.<UUID> for a snapshot)
	Image     string // legacy form only: the image name
}

// SnapshotID names a snapshot. In ceph-csi's form it is a VolumeID whose
// uuid names csi.snap.<uuid> (PoolID is the source image's pool); a legacy
// id is the source volume's legacy id plus the RBD snapshot name.
type SnapshotID struct {
	VolumeID
	Snap string // legacy form only
}

// Legacy reports whether the id is of the legacy form.
func (v VolumeID) Legacy() bool { return v.UUID == "" }

// String encodes the id in its form.
func (v VolumeID) String() string {
	if v.UUID != "" {
		return composeHandle(v.ClusterID, v.PoolID, v.UUID)
	}
	return legacyVolumeVersion + "." + v.legacyBody()
}

// String encodes the id in its form.
func (s SnapshotID) String() string {
	if s.UUID != "" {
		return composeHandle(s.ClusterID, s.PoolID, s.UUID)
	}
	return legacySnapshotVersion + "." + base64.RawURLEncoding.EncodeToString([]byte(s.Snap)) + "." + s.legacyBody()
}

func (v VolumeID) legacyBody() string {
	return base64.RawURLEncoding.EncodeToString([]byte(v.ClusterID)) + "." +
		strconv.FormatInt(v.PoolID, 16) + "." + v.Image
}

// NewHandle checks that a clusterID and uuid fit ceph-csi's handle and
// returns the VolumeID (or, wrapped, SnapshotID) they make.
func NewHandle(cluster string, pool int64, uuid string) (VolumeID, error) {
	if cluster == "" || len(cluster) > MaxClusterIDLen {
		return VolumeID{}, fmt.Errorf("%w: clusterID %q must have 1 to %d characters to fit a volume handle", ErrBadID, cluster, MaxClusterIDLen)
	}
	if !ValidUUID(uuid) {
		return VolumeID{}, fmt.Errorf("%w: %q is not a uuid", ErrBadID, uuid)
	}
	if pool < 0 {
		return VolumeID{}, fmt.Errorf("%w: pool id %d", ErrBadID, pool)
	}
	return VolumeID{ClusterID: cluster, PoolID: pool, UUID: uuid}, nil
}

func composeHandle(cluster string, pool int64, uuid string) string {
	return fmt.Sprintf("%04x-%04x-%s-%016x-%s", cephCSIEncoding, len(cluster), cluster, uint64(pool), uuid)
}

// ValidUUID reports whether s is a textual UUID (8-4-4-4-12 hex digits),
// as ceph-csi's journal uuids are.
func ValidUUID(s string) bool {
	if len(s) != uuidLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// parseHandle decodes ceph-csi's handle, as strictly as its
// DecomposeCSIID and with the uuid checked for being one.
func parseHandle(s string) (VolumeID, error) {
	if len(s) < handleFixedLen || len(s) > MaxHandleLen || s[4] != '-' || s[9] != '-' {
		return VolumeID{}, ErrBadID
	}
	ver, err := parseHex(s[0:4])
	if err != nil || ver != cephCSIEncoding {
		return VolumeID{}, ErrBadID
	}
	n, err := parseHex(s[5:9])
	if err != nil {
		return VolumeID{}, ErrBadID
	}
	rest := s[10:]
	if n == 0 || uint64(len(rest)) != n+1+16+1+uuidLen || rest[n] != '-' || rest[n+17] != '-' {
		return VolumeID{}, ErrBadID
	}
	pool, err := parseHex(rest[n+1 : n+17])
	if err != nil || int64(pool) < 0 {
		return VolumeID{}, ErrBadID
	}
	uuid := rest[n+18:]
	if !ValidUUID(uuid) {
		return VolumeID{}, ErrBadID
	}
	return VolumeID{ClusterID: rest[:n], PoolID: int64(pool), UUID: uuid}, nil
}

// parseHex reads a fixed-width hex field (digits only, no sign).
func parseHex(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return 0, ErrBadID
		}
	}
	return strconv.ParseUint(s, 16, 64)
}

func parseLegacyBody(rest string) (VolumeID, error) {
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

func parseLegacySnapshot(rest string) (SnapshotID, error) {
	enc, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return SnapshotID{}, ErrBadID
	}
	snap, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(snap) == 0 {
		return SnapshotID{}, ErrBadID
	}
	v, err := parseLegacyBody(rest)
	if err != nil {
		return SnapshotID{}, err
	}
	return SnapshotID{VolumeID: v, Snap: string(snap)}, nil
}

// ParseVolumeID decodes a volume id of either form.
func ParseVolumeID(s string) (VolumeID, error) {
	var (
		v   VolumeID
		err error
	)
	if rest, ok := strings.CutPrefix(s, legacyVolumeVersion+"."); ok {
		v, err = parseLegacyBody(rest)
	} else {
		v, err = parseHandle(s)
	}
	if err != nil {
		return VolumeID{}, fmt.Errorf("%w: %q", err, s)
	}
	return v, nil
}

// ParseSnapshotID decodes a snapshot id of either form. A ceph-csi volume
// handle parses too (the forms are the same); the journal tells them
// apart.
func ParseSnapshotID(s string) (SnapshotID, error) {
	var (
		id  SnapshotID
		err error
	)
	if rest, ok := strings.CutPrefix(s, legacySnapshotVersion+"."); ok {
		id, err = parseLegacySnapshot(rest)
	} else {
		id.VolumeID, err = parseHandle(s)
	}
	if err != nil {
		return SnapshotID{}, fmt.Errorf("%w: %q", err, s)
	}
	return id, nil
}
