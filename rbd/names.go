package rbd

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Well-known per-pool (per-namespace) objects.
const (
	DirectoryObject = "rbd_directory"
	TrashObject     = "rbd_trash"
	ChildrenObject  = "rbd_children" // clone v1 parent → children index
	InfoObject      = "rbd_info"
)

const (
	idPrefix        = "rbd_id."
	headerPrefix    = "rbd_header."
	dataPrefix      = "rbd_data."
	objectMapPrefix = "rbd_object_map."
)

// NoSnap is CEPH_NOSNAP: the image head in snapshot arguments.
const NoSnap = ^uint64(1) // 0xfffffffffffffffe

// IDObjectName is rbd_id.<name>, which holds the image id.
func IDObjectName(name string) string { return idPrefix + name }

// HeaderObjectName is rbd_header.<id>: metadata, watch and lock object.
func HeaderObjectName(id string) string { return headerPrefix + id }

// DataObjectPrefix is the default object prefix of an image, rbd_data.<id>.
// Readers must use the prefix get_object_prefix returns instead.
func DataObjectPrefix(id string) string { return dataPrefix + id }

// dataObjectPrefix is the object prefix a new image gets: rbd_data.<id>,
// or, with a separate data pool, rbd_data.<pool id of the image>.<id> as
// librbd's CreateRequest writes it, so that images of different pools never
// share data object names in one data pool.
func dataObjectPrefix(pool int64, id string, dataPool int64) string {
	if dataPool < 0 {
		return DataObjectPrefix(id)
	}
	return dataPrefix + strconv.FormatInt(pool, 10) + "." + id
}

// DataObjectName is <prefix>.<objno as %016x>.
func DataObjectName(prefix string, objno uint64) string {
	// On every I/O: one allocation, no fmt.
	var hex [17]byte
	hex[0] = '.'
	const digits = "0123456789abcdef"
	for i := 16; i >= 1; i-- {
		hex[i] = digits[objno&15]
		objno >>= 4
	}
	var b strings.Builder
	b.Grow(len(prefix) + len(hex))
	b.WriteString(prefix)
	b.Write(hex[:])
	return b.String()
}

// ObjectMapName is rbd_object_map.<id> for the head (snap NoSnap) and
// rbd_object_map.<id>.<snap as %016x> for a snapshot.
func ObjectMapName(id string, snap uint64) string {
	if snap == NoSnap {
		return objectMapPrefix + id
	}
	return fmt.Sprintf("%s%s.%016x", objectMapPrefix, id, snap)
}

// maxImageIDLength is RBD_MAX_IMAGE_ID_LENGTH: RBD_MAX_BLOCK_NAME_SIZE (24)
// minus "rbd_data." minus the terminating NUL.
const maxImageIDLength = 24 - len(dataPrefix) - 1

// GenerateImageID returns a new image id built like librbd's
// util::generate_image_id: the client's global (instance) id in hex
// followed by a random 32-bit number in hex, keeping the last 14
// characters if longer.
func GenerateImageID(globalID uint64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := strconv.FormatUint(globalID, 16) + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b[:])), 16)
	if len(id) > maxImageIDLength {
		id = id[len(id)-maxImageIDLength:]
	}
	return id
}

// validImageID checks an image id given by the caller: it names objects
// (rbd_header.<id>, rbd_data.<id>.*), so it must be short and plain.
func validImageID(id string) error {
	if len(id) > maxImageIDLength {
		return fmt.Errorf("%w: image id %q longer than %d", ErrInvalid, id, maxImageIDLength)
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return fmt.Errorf("%w: image id %q: only letters and digits", ErrInvalid, id)
		}
	}
	return nil
}
