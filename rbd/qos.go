package rbd

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// librbd's QoS options (src/common/options/rbd.yaml.in; burst_seconds
// since Octopus, exclude_ops since Quincy). They are plain config
// options, set for an image or a pool as config overrides (config.go)
// or in the cluster's configuration. Limits are per second; 0 is no
// limit.
const (
	QoSIOPSLimit      = "rbd_qos_iops_limit"
	QoSBPSLimit       = "rbd_qos_bps_limit"
	QoSReadIOPSLimit  = "rbd_qos_read_iops_limit"
	QoSWriteIOPSLimit = "rbd_qos_write_iops_limit"
	QoSReadBPSLimit   = "rbd_qos_read_bps_limit"
	QoSWriteBPSLimit  = "rbd_qos_write_bps_limit"
	// QoSScheduleTickMin is the shortest interval, in milliseconds, at
	// which requests held by a limit are released (default 50, min 1).
	QoSScheduleTickMin = "rbd_qos_schedule_tick_min"
	// QoSExcludeOps lists operations no limit applies to: names (read,
	// write, discard, write_same, compare_and_write) separated by commas,
	// or their bit mask as a number.
	QoSExcludeOps = "rbd_qos_exclude_ops"
)

// The suffixes of a limit's burst options: <limit minus "_limit">_burst
// and _burst_seconds (default 1, min 1).
const (
	qosBurstSuffix        = "_burst"
	qosBurstSecondsSuffix = "_burst_seconds"
)

// qosLimitNames are the six limits, in the order of QoS's fields.
var qosLimitNames = [6]string{QoSIOPSLimit, QoSReadIOPSLimit, QoSWriteIOPSLimit, QoSBPSLimit, QoSReadBPSLimit, QoSWriteBPSLimit}

// QoSBurst and QoSBurstSeconds name a limit's burst options
// (rbd_qos_iops_limit → rbd_qos_iops_burst, rbd_qos_iops_burst_seconds).
func QoSBurst(limit string) string { return strings.TrimSuffix(limit, "_limit") + qosBurstSuffix }

// QoSBurstSeconds: see QoSBurst.
func QoSBurstSeconds(limit string) string {
	return strings.TrimSuffix(limit, "_limit") + qosBurstSecondsSuffix
}

// QoSOptions returns every QoS option name librbd knows, sorted.
func QoSOptions() []string {
	var names []string
	for _, l := range qosLimitNames {
		names = append(names, l, QoSBurst(l), QoSBurstSeconds(l))
	}
	names = append(names, QoSScheduleTickMin, QoSExcludeOps)
	slices.Sort(names)
	return names
}

// IsQoSOption reports whether name is one of librbd's QoS options.
func IsQoSOption(name string) bool {
	_, ok := qosOptionIndex[name]
	return ok
}

var qosOptionIndex = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range QoSOptions() {
		m[n] = true
	}
	return m
}()

// Operation bits of rbd_qos_exclude_ops (librbd's RBD_IO_OPERATION_*).
const (
	IOOpRead            = 1 << 0
	IOOpWrite           = 1 << 1
	IOOpDiscard         = 1 << 2
	IOOpWriteSame       = 1 << 3
	IOOpCompareAndWrite = 1 << 4
	ioOpsAll            = 1<<5 - 1
)

var ioOpNames = map[string]uint64{
	"read": IOOpRead, "write": IOOpWrite, "discard": IOOpDiscard,
	"write_same": IOOpWriteSame, "compare_and_write": IOOpCompareAndWrite,
}

// QoSLimit is one limit with its burst.
type QoSLimit struct {
	Limit        uint64 // per second; 0: none
	Burst        uint64 // per second in a burst; 0: none (must be ≥ Limit)
	BurstSeconds uint64 // how long a burst may last (default 1)
}

// QoS is an image's QoS settings in librbd's terms.
type QoS struct {
	IOPS, ReadIOPS, WriteIOPS QoSLimit // operations per second
	BPS, ReadBPS, WriteBPS    QoSLimit // bytes per second
	ScheduleTickMin           uint64   // milliseconds (default 50)
	ExcludeOps                uint64   // IOOp* bits
}

// DefaultQoS is what librbd uses when nothing is configured.
func DefaultQoS() QoS {
	q := QoS{ScheduleTickMin: 50}
	for _, l := range q.limits() {
		l.BurstSeconds = 1
	}
	return q
}

func (q *QoS) limits() [6]*QoSLimit {
	return [6]*QoSLimit{&q.IOPS, &q.ReadIOPS, &q.WriteIOPS, &q.BPS, &q.ReadBPS, &q.WriteBPS}
}

// Limited reports whether any limit is set.
func (q QoS) Limited() bool {
	for _, l := range q.limits() {
		if l.Limit != 0 {
			return true
		}
	}
	return false
}

// ErrQoSValue: a QoS option's value librbd would refuse.
var ErrQoSValue = errors.New("rbd: invalid QoS option value")

// ParseQoSValue checks and reads one QoS option's value as librbd does:
// an unsigned integer with an optional K, M, G, T, P or E suffix (powers
// of 1024, optionally followed by "i"); _burst_seconds and the tick at
// least 1; rbd_qos_exclude_ops a list of operation names or a mask
// (unknown names are ignored, as librbd does).
func ParseQoSValue(option, value string) (uint64, error) {
	if !IsQoSOption(option) {
		return 0, fmt.Errorf("%w: %q is not a QoS option", ErrQoSValue, option)
	}
	if option == QoSExcludeOps {
		return parseIOOps(value), nil
	}
	n, err := parseIECUint(value)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q: %v", ErrQoSValue, option, value, err)
	}
	if n == 0 && (option == QoSScheduleTickMin || strings.HasSuffix(option, qosBurstSecondsSuffix)) {
		return 0, fmt.Errorf("%w: %s must be at least 1", ErrQoSValue, option)
	}
	return n, nil
}

// parseIECUint reads "123", "10M", "4Ki".
func parseIECUint(s string) (uint64, error) {
	digits := strings.TrimRight(s, "KMGTPEi")
	unit := s[len(digits):]
	shift := 0
	switch strings.TrimSuffix(unit, "i") {
	case "":
		if unit != "" {
			return 0, errors.New("bad unit")
		}
	case "K":
		shift = 10
	case "M":
		shift = 20
	case "G":
		shift = 30
	case "T":
		shift = 40
	case "P":
		shift = 50
	case "E":
		shift = 60
	default:
		return 0, errors.New("bad unit")
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, errors.New("not an unsigned integer")
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > (1<<64-1)>>shift {
		return 0, errors.New("out of range")
	}
	return n << shift, nil
}

// parseIOOps reads rbd_qos_exclude_ops.
func parseIOOps(s string) uint64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return n & ioOpsAll
	}
	var ops uint64
	for name := range strings.SplitSeq(s, ",") {
		ops |= ioOpNames[strings.TrimSpace(name)]
	}
	return ops
}

// QoSFrom reads the QoS options out of config override layers, the
// later winning (the pool's, then the image's), over librbd's defaults.
// Like librbd it skips a value it cannot parse, keeping the earlier
// layer's; the error lists those skipped.
func QoSFrom(layers ...map[string]string) (QoS, error) {
	q := DefaultQoS()
	var errs []error
	for _, layer := range layers {
		for opt, val := range layer {
			if !IsQoSOption(opt) {
				continue
			}
			n, err := ParseQoSValue(opt, val)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			q.set(opt, n)
		}
	}
	if err := q.validBursts(); err != nil {
		errs = append(errs, err)
	}
	return q, errors.Join(errs...)
}

func (q *QoS) set(opt string, n uint64) {
	switch opt {
	case QoSScheduleTickMin:
		q.ScheduleTickMin = n
		return
	case QoSExcludeOps:
		q.ExcludeOps = n
		return
	}
	for i, name := range qosLimitNames {
		l := q.limits()[i]
		switch opt {
		case name:
			l.Limit = n
		case QoSBurst(name):
			l.Burst = n
		case QoSBurstSeconds(name):
			l.BurstSeconds = n
		}
	}
}

// validBursts reports bursts below their limit (librbd logs them and
// applies the limit without its burst).
func (q *QoS) validBursts() error {
	var errs []error
	for i, l := range q.limits() {
		if l.Burst != 0 && l.Burst < l.Limit {
			errs = append(errs, fmt.Errorf("%w: %s %d is below %s %d (ignored)", ErrQoSValue,
				QoSBurst(qosLimitNames[i]), l.Burst, qosLimitNames[i], l.Limit))
		}
	}
	return errors.Join(errs...)
}
