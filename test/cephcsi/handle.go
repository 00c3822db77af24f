package cephcsi

import (
	"fmt"
	"strconv"
	"strings"
)

// Handle is a ceph-csi volume or snapshot id, encoding version 1
// (ceph-csi internal/util/volid.go, ComposeCSIID):
//
//	VVVV-LLLL-<clusterID>-PPPPPPPPPPPPPPPP-<uuid>
//
// VVVV is the encoding version (0001) and LLLL the clusterID's length, both
// 16-bit big-endian in hex; P is the pool id, 64-bit big-endian in hex; the
// uuid is 36 characters. This decoder exists so tests can re-point captured
// handles at replayed pools; the driver has its own.
type Handle struct {
	ClusterID string
	PoolID    int64
	UUID      string
}

// ParseHandle decodes a version-1 handle.
func ParseHandle(s string) (Handle, error) {
	var h Handle
	if len(s) < 10 || s[4] != '-' || s[9] != '-' {
		return h, fmt.Errorf("handle %q: too short", s)
	}
	ver, err := strconv.ParseUint(s[0:4], 16, 16)
	if err != nil || ver != 1 {
		return h, fmt.Errorf("handle %q: encoding version %q", s, s[0:4])
	}
	n, err := strconv.ParseUint(s[5:9], 16, 16)
	if err != nil {
		return h, fmt.Errorf("handle %q: clusterID length %q", s, s[5:9])
	}
	rest := s[10:]
	if uint64(len(rest)) != n+1+16+1+36 || rest[n] != '-' || rest[n+17] != '-' {
		return h, fmt.Errorf("handle %q: length mismatch", s)
	}
	h.ClusterID = rest[:n]
	pool, err := strconv.ParseUint(rest[n+1:n+17], 16, 64)
	if err != nil {
		return h, fmt.Errorf("handle %q: pool id: %w", s, err)
	}
	h.PoolID = int64(pool)
	h.UUID = rest[n+18:]
	return h, nil
}

// String encodes the handle.
func (h Handle) String() string {
	return strings.Join([]string{"0001", fmt.Sprintf("%04x", len(h.ClusterID)), h.ClusterID,
		fmt.Sprintf("%016x", uint64(h.PoolID)), h.UUID}, "-")
}
