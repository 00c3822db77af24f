package nbd

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// Default size constraints (see "Size constraints" in the spec).
const (
	DefaultMinBlockSize       = 1
	DefaultPreferredBlockSize = 4096
	DefaultMaxPayload         = 32 << 20
)

// Export is one named block device served over NBD.
type Export struct {
	// Name is what clients ask for in NBD_OPT_GO / NBD_OPT_EXPORT_NAME.
	Name string
	// Description is shown by NBD_OPT_LIST and NBD_INFO_DESCRIPTION.
	Description string
	// Backend holds the data. Required.
	Backend Backend
	// ReadOnly makes the server advertise NBD_FLAG_READ_ONLY and fail
	// writes, trims and write-zeroes with EPERM.
	ReadOnly bool

	// Size constraints advertised through NBD_INFO_BLOCK_SIZE; zero means
	// the default (1, 4096, 32 MiB). MinBlockSize and PreferredBlockSize
	// must be powers of two, MinBlockSize at most 64 KiB, and
	// PreferredBlockSize ≤ MaxPayload. Requests not aligned to
	// MinBlockSize fail with EINVAL.
	MinBlockSize       uint32
	PreferredBlockSize uint32
	MaxPayload         uint32

	// Limiter, when set, throttles the export's reads, writes, trims and
	// write-zeroes (flushes are never held): a worker waits for it before
	// calling the backend. Share one Limiter between every connection
	// and Export value that serve the same device; change its limits at
	// any time (qos.Limiter.Set).
	Limiter *qos.Limiter
	// Observer, when set, is told about every request (metrics).
	Observer Observer
	// Gate, when set, can pause the export: requests wait at it after
	// the Limiter, before the backend (a snapshot's quiesce). Share one
	// Gate between every connection and Export value of a device.
	Gate *Gate
}

// Optional capabilities a Backend may implement.
type (
	// FastZeroer is implemented by backends that know whether WriteZeroes
	// is faster than writing a buffer of zeroes (NBD_CMD_FLAG_FAST_ZERO).
	// Backends that do not implement it fail every fast-zero request with
	// ENOTSUP, which is always a correct answer.
	FastZeroer interface {
		FastZero(noHole bool) bool
	}

	// MultiConnBackend is implemented by backends whose Flush persists the
	// writes completed through every connection, so that clients may use
	// several connections to one export (NBD_FLAG_CAN_MULTI_CONN).
	MultiConnBackend interface {
		MultiConn() bool
	}
)

func (e *Export) minBlock() uint32 {
	if e.MinBlockSize == 0 {
		return DefaultMinBlockSize
	}
	return e.MinBlockSize
}

func (e *Export) preferredBlock() uint32 {
	if e.PreferredBlockSize == 0 {
		return max(DefaultPreferredBlockSize, e.minBlock())
	}
	return e.PreferredBlockSize
}

func (e *Export) maxPayload() uint32 {
	if e.MaxPayload == 0 {
		return max(DefaultMaxPayload, e.preferredBlock())
	}
	return e.MaxPayload
}

// Validate checks the export's fields against the protocol's limits.
func (e *Export) Validate() error {
	if e.Backend == nil {
		return errors.New("nbd: export has no backend")
	}
	if len(e.Name) > maxStringLen || len(e.Description) > maxStringLen {
		return errors.New("nbd: export name or description longer than 4096 bytes")
	}
	min, pref, maxp := e.minBlock(), e.preferredBlock(), e.maxPayload()
	if bits.OnesCount32(min) != 1 || min > 64<<10 {
		return fmt.Errorf("nbd: minimum block size %d is not a power of two ≤ 64 KiB", min)
	}
	if bits.OnesCount32(pref) != 1 || pref < min || pref < 512 {
		return fmt.Errorf("nbd: preferred block size %d is not a power of two ≥ max(512, minimum)", pref)
	}
	if maxp < pref {
		return fmt.Errorf("nbd: maximum payload %d is below the preferred block size %d", maxp, pref)
	}
	return nil
}

// TransmissionFlags returns the flags the server advertises for e. With
// structured, NBD_FLAG_SEND_DF is included (it is only meaningful when
// structured replies were negotiated). The kernel path passes
// TransmissionFlags(false) to netlink as the server flags.
func (e *Export) TransmissionFlags(structured bool) TransmissionFlags {
	f := FlagHasFlags | FlagSendFlush | FlagSendFUA
	if e.ReadOnly {
		f |= FlagReadOnly
	} else {
		f |= FlagSendTrim | FlagSendWriteZeroes | FlagSendFastZero
	}
	if structured {
		f |= FlagSendDF
	}
	if m, ok := e.Backend.(MultiConnBackend); ok && m.MultiConn() {
		f |= FlagCanMultiConn
	}
	return f
}
