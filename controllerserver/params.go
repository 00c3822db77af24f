package controllerserver

import (
	"crypto/rand"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

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

// newName returns prefix followed by a random version-4 UUID.
func newName(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%s%x-%x-%x-%x-%x", prefix, b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
