package osd

import "strconv"

// OpCode is a CEPH_OSD_OP_* value from src/include/rados.h: mode bits
// (RD 0x1000, WR 0x2000, RMW 0x3000), a type (DATA 0x0200, ATTR 0x0300,
// EXEC 0x0400, PG 0x0500) and a number.
type OpCode uint16

const (
	opModeRD  = 0x1000
	opModeWR  = 0x2000
	opTypeDat = 0x0200
	opTypeAtr = 0x0300
	opTypeExe = 0x0400
	opTypePG  = 0x0500
)

// Op codes (rados.h __CEPH_FORALL_OSD_OPS).
const (
	OpRead              OpCode = opModeRD | opTypeDat | 1
	OpStat              OpCode = opModeRD | opTypeDat | 2
	OpSparseRead        OpCode = opModeRD | opTypeDat | 5
	OpNotify            OpCode = opModeRD | opTypeDat | 6
	OpNotifyAck         OpCode = opModeRD | opTypeDat | 7
	OpAssertVer         OpCode = opModeRD | opTypeDat | 8
	OpListWatchers      OpCode = opModeRD | opTypeDat | 9
	OpListSnaps         OpCode = opModeRD | opTypeDat | 10
	OpOmapGetKeys       OpCode = opModeRD | opTypeDat | 17
	OpOmapGetVals       OpCode = opModeRD | opTypeDat | 18
	OpOmapGetHeader     OpCode = opModeRD | opTypeDat | 19
	OpOmapGetValsByKeys OpCode = opModeRD | opTypeDat | 20
	OpOmapCmp           OpCode = opModeRD | opTypeDat | 25
	OpCmpExt            OpCode = opModeRD | opTypeDat | 32

	OpWrite        OpCode = opModeWR | opTypeDat | 1
	OpWriteFull    OpCode = opModeWR | opTypeDat | 2
	OpTruncate     OpCode = opModeWR | opTypeDat | 3
	OpZero         OpCode = opModeWR | opTypeDat | 4
	OpDelete       OpCode = opModeWR | opTypeDat | 5
	OpAppend       OpCode = opModeWR | opTypeDat | 6
	OpCreate       OpCode = opModeWR | opTypeDat | 13
	OpRollback     OpCode = opModeWR | opTypeDat | 14
	OpWatch        OpCode = opModeWR | opTypeDat | 15
	OpOmapSetVals  OpCode = opModeWR | opTypeDat | 21
	OpOmapSetHdr   OpCode = opModeWR | opTypeDat | 22
	OpOmapClear    OpCode = opModeWR | opTypeDat | 23
	OpOmapRmKeys   OpCode = opModeWR | opTypeDat | 24
	OpSetAllocHint OpCode = opModeWR | opTypeDat | 35

	OpGetXattr  OpCode = opModeRD | opTypeAtr | 1
	OpGetXattrs OpCode = opModeRD | opTypeAtr | 2
	OpCmpXattr  OpCode = opModeRD | opTypeAtr | 3
	OpSetXattr  OpCode = opModeWR | opTypeAtr | 1
	OpRmXattr   OpCode = opModeWR | opTypeAtr | 4

	// OpCall's RD bit is historical: whether a class method reads or
	// writes is decided by the method's registration on the OSD.
	OpCall OpCode = opModeRD | opTypeExe | 1

	OpPGNLS OpCode = opModeRD | opTypePG | 5
)

// IsWrite reports whether the op code has the WR mode bit.
func (c OpCode) IsWrite() bool { return c&opModeWR != 0 }

var opNames = map[OpCode]string{
	OpRead: "read", OpStat: "stat", OpSparseRead: "sparse-read", OpNotify: "notify",
	OpNotifyAck: "notify-ack", OpAssertVer: "assert-version", OpListWatchers: "list-watchers",
	OpListSnaps: "list-snaps", OpOmapGetKeys: "omap-get-keys", OpOmapGetVals: "omap-get-vals",
	OpOmapGetHeader: "omap-get-header", OpOmapGetValsByKeys: "omap-get-vals-by-keys",
	OpOmapCmp: "omap-cmp", OpCmpExt: "cmpext", OpWrite: "write", OpWriteFull: "writefull",
	OpTruncate: "truncate", OpZero: "zero", OpDelete: "delete", OpAppend: "append",
	OpCreate: "create", OpRollback: "rollback", OpWatch: "watch", OpOmapSetVals: "omap-set-vals",
	OpOmapSetHdr: "omap-set-header", OpOmapClear: "omap-clear", OpOmapRmKeys: "omap-rm-keys",
	OpSetAllocHint: "set-alloc-hint", OpGetXattr: "getxattr", OpGetXattrs: "getxattrs",
	OpCmpXattr: "cmpxattr", OpSetXattr: "setxattr", OpRmXattr: "rmxattr", OpCall: "call",
	OpPGNLS: "pgnls",
}

func (c OpCode) String() string {
	if s, ok := opNames[c]; ok {
		return s
	}
	return "op0x" + strconv.FormatUint(uint64(c), 16)
}

// Message flags (CEPH_OSD_FLAG_*).
const (
	FlagAck            uint32 = 0x0001
	FlagOnDisk         uint32 = 0x0004
	FlagRetry          uint32 = 0x0008
	FlagRead           uint32 = 0x0010
	FlagWrite          uint32 = 0x0020
	FlagOrderSnap      uint32 = 0x0040
	FlagBalanceReads   uint32 = 0x0100
	FlagPGOp           uint32 = 0x0400
	FlagExec           uint32 = 0x0800
	FlagLocalizeReads  uint32 = 0x2000
	FlagRWOrdered      uint32 = 0x4000
	FlagIgnoreCache    uint32 = 0x8000
	FlagSkipRWLocks    uint32 = 0x10000
	FlagIgnoreOverlay  uint32 = 0x20000
	FlagEnforceSnapc   uint32 = 0x100000
	FlagRedirected     uint32 = 0x200000
	FlagKnownRedir     uint32 = 0x400000
	FlagFullTry        uint32 = 0x800000
	FlagFullForce      uint32 = 0x1000000
	FlagIgnoreRedirect uint32 = 0x2000000
	FlagReturnVec      uint32 = 0x4000000
)

// Per-op flags (CEPH_OSD_OP_FLAG_*).
const (
	OpFlagExcl            uint32 = 0x1
	OpFlagFailOK          uint32 = 0x2
	OpFlagFadviseRandom   uint32 = 0x4
	OpFlagFadviseSeq      uint32 = 0x8
	OpFlagFadviseWillNeed uint32 = 0x10
	OpFlagFadviseDontNeed uint32 = 0x20
	OpFlagFadviseNoCache  uint32 = 0x40
)

// Comparison operators for CmpXattr and OmapCmp (CEPH_OSD_CMPXATTR_OP_*).
const (
	CmpEQ  uint8 = 1
	CmpNE  uint8 = 2
	CmpGT  uint8 = 3
	CmpGTE uint8 = 4
	CmpLT  uint8 = 5
	CmpLTE uint8 = 6
)

// Comparison modes for CmpXattr (CEPH_OSD_CMPXATTR_MODE_*).
const (
	CmpModeString uint8 = 1
	CmpModeU64    uint8 = 2
)

// Watch sub-operations (CEPH_OSD_WATCH_OP_*).
const (
	WatchOpUnwatch   uint8 = 0
	WatchOpWatch     uint8 = 3
	WatchOpReconnect uint8 = 5
	WatchOpPing      uint8 = 7
)

// Allocation hint flags (CEPH_OSD_ALLOC_HINT_FLAG_*).
const (
	AllocHintSequentialWrite uint32 = 1
	AllocHintRandomWrite     uint32 = 2
	AllocHintSequentialRead  uint32 = 4
	AllocHintRandomRead      uint32 = 8
	AllocHintAppendOnly      uint32 = 16
	AllocHintImmutable       uint32 = 32
	AllocHintShortLived      uint32 = 64
	AllocHintLongLived       uint32 = 128
	AllocHintCompressible    uint32 = 256
	AllocHintIncompressible  uint32 = 512
)

// Message types handled by this package.
const (
	MsgOSDMap      uint16 = 41 // handed to Config.OnMapMessage, not decoded here
	MsgOSDOp       uint16 = 42
	MsgOSDOpReply  uint16 = 43
	MsgWatchNotify uint16 = 44
	MsgOSDBackoff  uint16 = 61
)

// NoSnap is CEPH_NOSNAP: the head object.
const NoSnap uint64 = 0xfffffffffffffffe

// snapDir is CEPH_SNAPDIR.
const snapDir uint64 = 0xffffffffffffffff
