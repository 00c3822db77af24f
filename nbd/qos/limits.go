package qos

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Op is the kind of an operation, as far as limits care.
type Op uint8

// Operation kinds. Discards and write-zeroes are writes for the read and
// write limits, as in librbd (a write-zeroes is a discard or a write-same
// there); Exclude can leave them out.
const (
	Read Op = iota
	Write
	Discard
	WriteZeroes
	numOps
)

var opNames = [numOps]string{"read", "write", "discard", "write_zeroes"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

func (o Op) isRead() bool { return o == Read }

// OpSet is a set of operation kinds.
type OpSet uint8

// Has reports whether o is in the set.
func (s OpSet) Has(o Op) bool { return s&(1<<o) != 0 }

// With returns the set with o added.
func (s OpSet) With(o Op) OpSet { return s | 1<<o }

func (s OpSet) String() string {
	var names []string
	for o := range numOps {
		if s.Has(o) {
			names = append(names, o.String())
		}
	}
	return strings.Join(names, ",")
}

// Limit is one rate limit; the zero value is no limit.
type Limit struct {
	// Rate is the sustained rate, in operations or bytes per second;
	// 0: no limit.
	Rate uint64
	// Burst is the rate allowed in a burst; 0: Rate (no burst above it).
	// A Burst below Rate is ignored (librbd does the same after logging
	// it); Validate reports it.
	Burst uint64
	// BurstSeconds is how long a burst at Burst may last; 0 means 1.
	BurstSeconds uint64
}

// IsZero reports whether the limit is off.
func (l Limit) IsZero() bool { return l.Rate == 0 }

// Limits are every limit of one export.
type Limits struct {
	IOPS, ReadIOPS, WriteIOPS Limit // operations per second
	BPS, ReadBPS, WriteBPS    Limit // bytes per second
	// TickMin is the shortest interval at which waiting requests are
	// released (librbd's rbd_qos_schedule_tick_min); 0: DefaultTickMin.
	TickMin time.Duration
	// Exclude lists the operation kinds no limit applies to.
	Exclude OpSet
}

// DefaultTickMin is librbd's default rbd_qos_schedule_tick_min (50 ms).
const DefaultTickMin = 50 * time.Millisecond

// Enabled reports whether any limit is set.
func (l Limits) Enabled() bool {
	for _, x := range l.all() {
		if !x.IsZero() {
			return true
		}
	}
	return false
}

// bucket indexes, in the order of Limits.all.
const (
	bIOPS = iota
	bReadIOPS
	bWriteIOPS
	bBPS
	bReadBPS
	bWriteBPS
	numBuckets
)

var bucketNames = [numBuckets]string{"iops", "read_iops", "write_iops", "bps", "read_bps", "write_bps"}

func (l *Limits) all() [numBuckets]Limit {
	return [numBuckets]Limit{l.IOPS, l.ReadIOPS, l.WriteIOPS, l.BPS, l.ReadBPS, l.WriteBPS}
}

// ErrInvalid: limits that cannot be applied as given.
var ErrInvalid = errors.New("qos: invalid limits")

// Validate reports a burst below its rate, which Set ignores.
func (l Limits) Validate() error {
	for i, x := range l.all() {
		if x.Burst != 0 && x.Burst < x.Rate {
			return fmt.Errorf("%w: %s burst %d is below its limit %d", ErrInvalid, bucketNames[i], x.Burst, x.Rate)
		}
	}
	if l.TickMin < 0 {
		return fmt.Errorf("%w: negative tick", ErrInvalid)
	}
	return nil
}

func (l Limits) String() string {
	var parts []string
	for i, x := range l.all() {
		if x.IsZero() {
			continue
		}
		s := fmt.Sprintf("%s=%d", bucketNames[i], x.Rate)
		if x.Burst > x.Rate {
			s += fmt.Sprintf("(burst %d", x.Burst)
			if x.BurstSeconds > 1 {
				s += fmt.Sprintf(" for %ds", x.BurstSeconds)
			}
			s += ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "unlimited"
	}
	if l.Exclude != 0 {
		parts = append(parts, "exclude="+l.Exclude.String())
	}
	return strings.Join(parts, " ")
}
