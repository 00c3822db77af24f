package nbd

// Wire constants of the NBD protocol (doc/proto.md). Names follow the
// spec's, without the NBD_ prefix.

const (
	magicInit        = 0x4e42444d41474943 // "NBDMAGIC"
	magicOption      = 0x49484156454f5054 // "IHAVEOPT"
	magicOptionReply = 0x0003e889045565a9
	magicRequest     = 0x25609513
	magicSimpleReply = 0x67446698
	magicStructReply = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle uint16 = 1 << 0
	flagNoZeroes      uint16 = 1 << 1

	clientFixedNewstyle uint32 = 1 << 0
	clientNoZeroes      uint32 = 1 << 1
)

// Options.
const (
	optExportName      uint32 = 1
	optAbort           uint32 = 2
	optList            uint32 = 3
	optPeekExport      uint32 = 4
	optStartTLS        uint32 = 5
	optInfo            uint32 = 6
	optGo              uint32 = 7
	optStructuredReply uint32 = 8
	optListMetaContext uint32 = 9
	optSetMetaContext  uint32 = 10
	optExtendedHeaders uint32 = 11
)

// Option reply types. Errors have bit 31 set.
const (
	repAck            uint32 = 1
	repServer         uint32 = 2
	repInfo           uint32 = 3
	repErrUnsup       uint32 = 1<<31 + 1
	repErrPolicy      uint32 = 1<<31 + 2
	repErrInvalid     uint32 = 1<<31 + 3
	repErrPlatform    uint32 = 1<<31 + 4
	repErrTLSReqd     uint32 = 1<<31 + 5
	repErrUnknown     uint32 = 1<<31 + 6
	repErrShutdown    uint32 = 1<<31 + 7
	repErrBlockSizeRq uint32 = 1<<31 + 8
	repErrTooBig      uint32 = 1<<31 + 9
)

// Information types for NBD_REP_INFO.
const (
	infoExport      uint16 = 0
	infoName        uint16 = 1
	infoDescription uint16 = 2
	infoBlockSize   uint16 = 3
)

// TransmissionFlags are the per-export flags sent at the end of the
// handshake (and handed to the kernel as server flags over netlink).
type TransmissionFlags uint16

// Transmission flags.
const (
	FlagHasFlags        TransmissionFlags = 1 << 0
	FlagReadOnly        TransmissionFlags = 1 << 1
	FlagSendFlush       TransmissionFlags = 1 << 2
	FlagSendFUA         TransmissionFlags = 1 << 3
	FlagRotational      TransmissionFlags = 1 << 4
	FlagSendTrim        TransmissionFlags = 1 << 5
	FlagSendWriteZeroes TransmissionFlags = 1 << 6
	FlagSendDF          TransmissionFlags = 1 << 7
	FlagCanMultiConn    TransmissionFlags = 1 << 8
	FlagSendResize      TransmissionFlags = 1 << 9
	FlagSendCache       TransmissionFlags = 1 << 10
	FlagSendFastZero    TransmissionFlags = 1 << 11
)

// Commands.
const (
	cmdRead        uint16 = 0
	cmdWrite       uint16 = 1
	cmdDisc        uint16 = 2
	cmdFlush       uint16 = 3
	cmdTrim        uint16 = 4
	cmdCache       uint16 = 5
	cmdWriteZeroes uint16 = 6
	cmdBlockStatus uint16 = 7
)

// Command flags.
const (
	cmdFlagFUA      uint16 = 1 << 0
	cmdFlagNoHole   uint16 = 1 << 1
	cmdFlagDF       uint16 = 1 << 2
	cmdFlagReqOne   uint16 = 1 << 3
	cmdFlagFastZero uint16 = 1 << 4
)

// Structured reply flags and chunk types.
const (
	replyFlagDone uint16 = 1 << 0

	replyNone        uint16 = 0
	replyOffsetData  uint16 = 1
	replyOffsetHole  uint16 = 2
	replyError       uint16 = 1<<15 + 1
	replyErrorOffset uint16 = 1<<15 + 2
)

// Sizes of fixed wire records.
const (
	requestSize      = 28 // magic, flags, type, cookie, offset, length
	simpleReplySize  = 16 // magic, error, cookie
	chunkHeaderSize  = 20 // magic, flags, type, cookie, length
	optionHeaderSize = 16 // IHAVEOPT, option, length
	maxStringLen     = 4096
)
