package rados

import "github.com/csi-gorbd/csi-gorbd/rados/osd"

// Allocation hint flags for WriteOp.SetAllocHint (CEPH_OSD_ALLOC_HINT_FLAG_*):
// how the object will be written and read, which object stores may use
// to place and compress it.
const (
	AllocHintSequentialWrite = osd.AllocHintSequentialWrite
	AllocHintRandomWrite     = osd.AllocHintRandomWrite
	AllocHintSequentialRead  = osd.AllocHintSequentialRead
	AllocHintRandomRead      = osd.AllocHintRandomRead
	AllocHintAppendOnly      = osd.AllocHintAppendOnly
	AllocHintImmutable       = osd.AllocHintImmutable
	AllocHintShortLived      = osd.AllocHintShortLived
	AllocHintLongLived       = osd.AllocHintLongLived
	AllocHintCompressible    = osd.AllocHintCompressible
	AllocHintIncompressible  = osd.AllocHintIncompressible
)
