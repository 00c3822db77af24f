package crush

import "errors"

// ErrMalformed is wrapped by every error Decode returns for a map that is
// structurally invalid (bad magic, dangling bucket references, cycles, ...).
var ErrMalformed = errors.New("crush: malformed map")

// Magic is the first word of an encoded CRUSH map.
const Magic = 0x00010000

// Special item values.
const (
	ItemUndef = 0x7ffffffe // internal: not yet chosen (indep)
	ItemNone  = 0x7fffffff // no item at this position
)

// Bucket algorithms.
const (
	BucketUniform = 1
	BucketList    = 2
	BucketTree    = 3
	BucketStraw   = 4
	BucketStraw2  = 5
)

// Rule step opcodes.
const (
	OpNoop                        = 0
	OpTake                        = 1
	OpChooseFirstN                = 2
	OpChooseIndep                 = 3
	OpEmit                        = 4
	OpChooseLeafFirstN            = 6
	OpChooseLeafIndep             = 7
	OpSetChooseTries              = 8
	OpSetChooseLeafTries          = 9
	OpSetChooseLocalTries         = 10
	OpSetChooseLocalFallbackTries = 11
	OpSetChooseLeafVaryR          = 12
	OpSetChooseLeafStable         = 13
	OpChooseMSR                   = 16
	OpSetMSRDescents              = 14
	OpSetMSRCollisionTries        = 15
)

// Rule types.
const (
	RuleReplicated = 1
	RuleErasure    = 3
	RuleMSRFirstN  = 4
	RuleMSRIndep   = 5
)

// DefaultChooseArgs is the choose_args index of the compat weight set, used
// when a pool has no choose_args of its own.
const DefaultChooseArgs = -1

// Bucket is one interior node of the hierarchy. Items are device ids (>= 0)
// or bucket ids (< 0).
type Bucket struct {
	ID     int32
	Type   uint16
	Alg    uint8
	Hash   uint8
	Weight uint32 // 16.16 fixed point
	Items  []int32

	ItemWeight  uint32   // uniform: the weight of every item
	ItemWeights []uint32 // list, straw, straw2: per-item weights
	SumWeights  []uint32 // list
	NodeWeights []uint32 // tree
	Straws      []uint32 // straw
}

// Step is one rule step.
type Step struct {
	Op   uint32
	Arg1 int32
	Arg2 int32
}

// Rule is a placement rule. MinSize and MaxSize are the deprecated mask
// fields, kept for display.
type Rule struct {
	Type    uint8
	MinSize uint8
	MaxSize uint8
	Steps   []Step
}

// ChooseArg overrides, for one bucket, the straw2 weights (one weight set per
// replica position; the last applies to later positions) and/or the ids fed
// to the hash.
type ChooseArg struct {
	WeightSets [][]uint32
	IDs        []int32
}

// ChooseArgMap holds the overrides of one choose_args set, indexed by bucket
// index (-1-id); entries for buckets without overrides are zero.
type ChooseArgMap []ChooseArg

// Tunables change the mapping behaviour; see Ceph's doc/rados/operations/crush-map.rst.
type Tunables struct {
	ChooseLocalTries         uint32
	ChooseLocalFallbackTries uint32
	ChooseTotalTries         uint32
	ChooseLeafDescendOnce    uint32
	ChooseLeafVaryR          uint8
	StrawCalcVersion         uint8
	AllowedBucketAlgs        uint32
	ChooseLeafStable         uint8
	MSRDescents              uint32
	MSRCollisionTries        uint32
}

// legacyTunables are the values a map without tunables decodes to
// (CrushWrapper::set_tunables_legacy plus the MSR defaults).
func legacyTunables() Tunables {
	return Tunables{
		ChooseLocalTries:         2,
		ChooseLocalFallbackTries: 5,
		ChooseTotalTries:         19,
		AllowedBucketAlgs:        1<<BucketUniform | 1<<BucketList | 1<<BucketStraw,
		MSRDescents:              100,
		MSRCollisionTries:        100,
	}
}

// Map is a decoded CRUSH map.
type Map struct {
	Buckets    []*Bucket // index -1-id; nil for empty slots
	Rules      []*Rule   // index = rule id; nil for empty slots
	MaxDevices int32     // one more than the largest device id in any bucket
	Tunables

	TypeNames map[int32]string
	Names     map[int32]string
	RuleNames map[int32]string

	ClassMap     map[int32]int32           // device id -> class id
	ClassNames   map[int32]string          // class id -> name
	ClassBuckets map[int32]map[int32]int32 // bucket id -> class id -> shadow bucket id

	ChooseArgs map[int64]ChooseArgMap // pool id or DefaultChooseArgs

	workSize int // total perm slots for a Workspace
}

// Bucket returns the bucket with the given (negative) id, or nil.
func (m *Map) Bucket(id int32) *Bucket {
	i := -1 - int64(id)
	if i < 0 || i >= int64(len(m.Buckets)) {
		return nil
	}
	return m.Buckets[i]
}

// ChooseArgsFor returns the choose_args for a pool, falling back to the
// compat set, or nil (CrushWrapper::choose_args_get_with_fallback).
func (m *Map) ChooseArgsFor(pool int64) ChooseArgMap {
	if a, ok := m.ChooseArgs[pool]; ok {
		return a
	}
	if a, ok := m.ChooseArgs[DefaultChooseArgs]; ok {
		return a
	}
	return nil
}
