package nbd

import (
	"fmt"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// Op is the kind of a transmission request, as an [Observer] sees it.
type Op uint8

// Request kinds (NBD_CMD_READ, WRITE, FLUSH, TRIM, WRITE_ZEROES).
const (
	OpRead Op = iota
	OpWrite
	OpFlush
	OpDiscard
	OpWriteZeroes
	// NumOps is the number of kinds, for tables indexed by Op.
	NumOps
)

var opNames = [NumOps]string{"read", "write", "flush", "discard", "write_zeroes"}

func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// opOf maps a request type to its Op; ok is false for anything else.
func opOf(typ uint16) (Op, bool) {
	switch typ {
	case cmdRead:
		return OpRead, true
	case cmdWrite:
		return OpWrite, true
	case cmdFlush:
		return OpFlush, true
	case cmdTrim:
		return OpDiscard, true
	case cmdWriteZeroes:
		return OpWriteZeroes, true
	}
	return 0, false
}

// qosOps maps an Op to what the limiter charges; flushes are never
// limited (limited says whether the Op is).
var qosOps = [NumOps]struct {
	op      qos.Op
	limited bool
}{
	OpRead:        {qos.Read, true},
	OpWrite:       {qos.Write, true},
	OpDiscard:     {qos.Discard, true},
	OpWriteZeroes: {qos.WriteZeroes, true},
}

// Observer is told about every request of an export (the per-volume
// metrics). Its methods are called concurrently from the connections'
// workers and must be quick and never block. Unknown request types are
// not reported.
type Observer interface {
	// Begin: a request of kind op was read and is handed to a worker.
	Begin(op Op)
	// End: the request was executed, or refused without reaching the
	// backend (errno says which), and its reply is about to be sent. n
	// is its length in bytes (0 for flushes); latency runs from Begin;
	// throttled is the part of it spent waiting for the export's
	// Limiter.
	End(op Op, n uint32, latency, throttled time.Duration, errno Errno)
}
