package osdmap

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/crush"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Pool types.
const (
	PoolReplicated = 1
	PoolErasure    = 3
)

// Pool flags (pg_pool_t::FLAG_*).
const (
	PoolFlagHashPSPool       = 1 << 0
	PoolFlagFull             = 1 << 1
	PoolFlagECOverwrites     = 1 << 2
	PoolFlagFullQuota        = 1 << 10
	PoolFlagNearFull         = 1 << 11
	PoolFlagBackfillFull     = 1 << 12
	PoolFlagSelfManagedSnaps = 1 << 13
	PoolFlagPoolSnaps        = 1 << 14
	PoolFlagEIO              = 1 << 16
)

// SnapInterval is one [Start, Start+Len) run of an interval_set<snapid_t>.
type SnapInterval struct {
	Start, Len uint64
}

// PoolSnap is a pool snapshot (pool_snap_info_t).
type PoolSnap struct {
	ID    uint64
	Stamp time.Time
	Name  string
}

// Pool is the client-relevant part of a pg_pool_t.
type Pool struct {
	Version    uint8 // struct_v as encoded
	Type       uint8
	Size       uint8
	CrushRule  uint8
	ObjectHash uint8
	PGNum      uint32
	PGPNum     uint32
	LastChange uint32
	SnapSeq    uint64
	SnapEpoch  uint32
	Snaps      map[uint64]PoolSnap
	// RemovedSnaps is the legacy removed_snaps interval set (pre-Octopus
	// pools; newer maps carry removed snaps in the OSDMap instead).
	RemovedSnaps []SnapInterval
	Flags        uint64
	MinSize      uint8

	QuotaMaxBytes   uint64
	QuotaMaxObjects uint64
	Tiers           []int64
	TierOf          int64
	CacheMode       uint8
	ReadTier        int64
	WriteTier       int64
	StripeWidth     uint32

	ErasureCodeProfile string

	LastForceOpResendPreluminous uint32
	LastForceOpResendPrenautilus uint32
	LastForceOpResend            uint32

	Application map[string]map[string]string
	CreateTime  time.Time

	PGNumTarget  uint32
	PGPNumTarget uint32
	PGNumPending uint32

	// Stretch-mode peering rule (v30, or v31+ when present): how many
	// buckets of type PeeringCrushBucketBarrier an acting set must span,
	// and a bucket that must be among them (CRUSH_ITEM_NONE: none).
	// Peering only; placement does not use them.
	PeeringCrushBucketCount     uint32
	PeeringCrushBucketTarget    uint32
	PeeringCrushBucketBarrier   uint32
	PeeringCrushMandatoryMember uint32
	// NonprimaryShards (v32, Tentacle) lists, ascending, the erasure-code
	// shards that must not act as primary (EC optimisations).
	NonprimaryShards []int8
	// Unread is the number of bytes of the encoded struct this decoder
	// did not interpret (fields of a version newer than 32); 0 for every
	// version we know.
	Unread int

	pgNumMask  uint32
	pgpNumMask uint32
}

// crushItemNone is CRUSH_ITEM_NONE, the default mandatory member.
const crushItemNone = 0x7fffffff

// maxPoolCompat is the newest pg_pool_t compat version whose field layout
// we read (v5 compat has held since Firefly).
const maxPoolCompat = 29

// DecodePool decodes one pg_pool_t (struct v5 and later).
func DecodePool(d *encoding.Decoder) *Pool {
	s, h := d.Struct(maxPoolCompat)
	if d.Err() != nil {
		return nil
	}
	if h.Version < 5 {
		d.Fail("pg_pool_t", fmt.Errorf("%w: pre-Firefly version %d", encoding.ErrIncompatible, h.Version))
		return nil
	}
	p := &Pool{Version: h.Version}
	p.decodeBase(s)
	p.decodeTiering(s, h.Version)
	p.decodeLate(s, h.Version)
	p.Unread = s.Len()
	if s.Err() != nil {
		return nil
	}
	if p.Type != PoolReplicated && p.Type != PoolErasure {
		d.Fail("pg_pool_t", fmt.Errorf("%w: pool type %d", ErrMalformed, p.Type))
		return nil
	}
	if p.PGNum == 0 || p.PGPNum == 0 {
		d.Fail("pg_pool_t", fmt.Errorf("%w: pg_num %d pgp_num %d", ErrMalformed, p.PGNum, p.PGPNum))
		return nil
	}
	p.calcMasks()
	return p
}

// decodeBase reads the fields every pg_pool_t from v5 on has: type,
// sizes, rule, PG counts, the pool snapshots and the flags.
func (p *Pool) decodeBase(s *encoding.Decoder) {
	p.Type = s.U8()
	p.Size = s.U8()
	p.CrushRule = s.U8()
	p.ObjectHash = s.U8()
	p.PGNum = s.U32()
	p.PGPNum = s.U32()
	s.U32() // lpg_num
	s.U32() // lpgp_num
	p.LastChange = s.U32()
	p.SnapSeq = s.U64()
	p.SnapEpoch = s.U32()
	// v >= 3: snaps, removed_snaps, auid
	n := s.Count(4)
	if n > 0 {
		p.Snaps = make(map[uint64]PoolSnap, n)
	}
	for i := 0; i < n && s.Err() == nil; i++ {
		id := s.U64()
		ss, _ := s.Struct(2)
		ps := PoolSnap{ID: ss.U64(), Stamp: ss.Timespec(), Name: ss.String()}
		p.Snaps[id] = ps
	}
	p.RemovedSnaps = decodeIntervals(s)
	s.U64() // auid
	p.Flags = s.U64()
	s.U32() // crash_replay_interval
}

// decodeTiering reads the fields of struct versions 7 to 24: min_size,
// quotas, cache tiering, stripe width, erasure code profile and the
// pre-Luminous resend epoch.
func (p *Pool) decodeTiering(s *encoding.Decoder, v uint8) {
	if v >= 7 {
		p.MinSize = s.U8()
	} else {
		p.MinSize = p.Size - p.Size/2
	}
	if v >= 8 {
		p.QuotaMaxBytes = s.U64()
		p.QuotaMaxObjects = s.U64()
	}
	p.ReadTier, p.WriteTier, p.TierOf = -1, -1, -1
	if v >= 9 {
		n := s.Count(8)
		p.Tiers = make([]int64, 0, n)
		for i := 0; i < n && s.Err() == nil; i++ {
			p.Tiers = append(p.Tiers, s.I64())
		}
		p.TierOf = s.I64()
		p.CacheMode = s.U8()
		p.ReadTier = s.I64()
		p.WriteTier = s.I64()
	}
	if v >= 10 {
		skipStringMap(s) // properties
	}
	if v >= 11 {
		s.Struct(255) // hit_set_params
		s.U32()       // hit_set_period
		s.U32()       // hit_set_count
	}
	if v >= 12 {
		p.StripeWidth = s.U32()
	}
	if v >= 13 {
		s.Skip(8 + 8 + 4*4) // target_max_bytes/objects, cache ratios and ages
	}
	if v >= 14 {
		p.ErasureCodeProfile = s.String()
	}
	if v >= 15 {
		p.LastForceOpResendPreluminous = s.U32()
	}
	if v >= 16 {
		s.I32() // min_read_recency_for_promote
	}
	if v >= 17 {
		s.U64() // expected_num_objects
	}
	if v >= 19 {
		s.U32() // cache_target_dirty_high_ratio_micro
	}
	if v >= 20 {
		s.I32() // min_write_recency_for_promote
	}
	if v >= 21 {
		s.U8() // use_gmt_hitset
	}
	if v >= 22 {
		s.U8() // fast_read
	}
	if v >= 23 {
		s.I32() // hit_set_grade_decay_rate
		s.U32() // hit_set_search_last_n
	}
	if v >= 24 {
		s.Struct(255) // pool_opts_t
	}
}

// decodeLate reads the fields of struct versions 25 on (Nautilus and
// later): resend epochs, applications, PG targets, stretch-mode peering
// and the nonprimary shards.
func (p *Pool) decodeLate(s *encoding.Decoder, v uint8) {
	if v >= 25 {
		p.LastForceOpResendPrenautilus = s.U32()
	} else {
		p.LastForceOpResendPrenautilus = p.LastForceOpResendPreluminous
	}
	if v >= 26 {
		n := s.Count(8)
		p.Application = make(map[string]map[string]string, n)
		for i := 0; i < n && s.Err() == nil; i++ {
			k := s.String()
			p.Application[k] = decodeStringMap(s)
		}
	}
	if v >= 27 {
		p.CreateTime = s.Timespec()
	}
	if v >= 28 {
		p.PGNumTarget = s.U32()
		p.PGPNumTarget = s.U32()
		p.PGNumPending = s.U32()
		s.U32() // old merge last_epoch_started
		s.U32() // old merge last_epoch_clean
		p.LastForceOpResend = s.U32()
		s.U8() // pg_autoscale_mode
	} else {
		p.PGNumTarget = p.PGNum
		p.PGPNumTarget = p.PGPNum
		p.PGNumPending = p.PGNum
		p.LastForceOpResend = p.LastForceOpResendPrenautilus
	}
	if v >= 29 {
		s.Struct(255) // last_pg_merge_meta (pg_merge_meta_t): merges only
	}
	p.PeeringCrushMandatoryMember = crushItemNone
	if v == 30 {
		p.PeeringCrushBucketCount = s.U32()
		p.PeeringCrushBucketTarget = s.U32()
		p.PeeringCrushBucketBarrier = s.U32()
		p.PeeringCrushMandatoryMember = s.U32()
	}
	if v >= 31 && s.Bool() { // std::optional<tuple<u32 x4>>
		p.PeeringCrushBucketCount = s.U32()
		p.PeeringCrushBucketTarget = s.U32()
		p.PeeringCrushBucketBarrier = s.U32()
		p.PeeringCrushMandatoryMember = s.U32()
	}
	if v >= 32 {
		// shard_id_set: a 128-bit bitset_set, two denc varint words.
		for w := 0; w < 2 && s.Err() == nil; w++ {
			bits := s.Varint()
			for i := 0; i < 64; i++ {
				if bits&(1<<i) != 0 {
					p.NonprimaryShards = append(p.NonprimaryShards, int8(w*64+i))
				}
			}
		}
	}
}

func (p *Pool) calcMasks() {
	p.pgNumMask = 1<<bits.Len32(p.PGNum-1) - 1
	p.pgpNumMask = 1<<bits.Len32(p.PGPNum-1) - 1
}

// CanShiftOSDs reports whether OSDs may move positions (replicated pools)
// rather than keep their slot as ItemNone (erasure pools).
func (p *Pool) CanShiftOSDs() bool { return p.Type == PoolReplicated }

// ResendEpoch is the epoch before which ops to this pool must be resent:
// the Nautilus last_force_op_resend, as Objecter uses it.
func (p *Pool) ResendEpoch() uint32 { return p.LastForceOpResend }

// stableMod is ceph_stable_mod.
func stableMod(x, b, bmask uint32) uint32 {
	if x&bmask < b {
		return x & bmask
	}
	return x & (bmask >> 1)
}

// HashKey is pg_pool_t::hash_key: the raw placement seed of an object key
// in a namespace.
func (p *Pool) HashKey(key, ns string) uint32 {
	if ns == "" {
		return StrHash(p.ObjectHash, []byte(key))
	}
	var buf [256]byte
	var k []byte
	if n := len(ns) + 1 + len(key); n <= len(buf) {
		k = buf[:0]
	} else {
		k = make([]byte, 0, n)
	}
	k = append(k, ns...)
	k = append(k, 0x1f)
	k = append(k, key...)
	return StrHash(p.ObjectHash, k)
}

// RawPGToPG folds a raw seed into [0, pg_num).
func (p *Pool) RawPGToPG(pg PG) PG {
	pg.Seed = stableMod(pg.Seed, p.PGNum, p.pgNumMask)
	return pg
}

// RawPGToPPS is the placement seed CRUSH is fed for a pg.
func (p *Pool) RawPGToPPS(pg PG) uint32 {
	s := stableMod(pg.Seed, p.PGPNum, p.pgpNumMask)
	if p.Flags&PoolFlagHashPSPool != 0 {
		return crush.Hash2(crush.HashRjenkins1, s, uint32(pg.Pool))
	}
	return s + uint32(pg.Pool)
}

func decodeIntervals(d *encoding.Decoder) []SnapInterval {
	n := d.Count(16)
	if n == 0 {
		return nil
	}
	out := make([]SnapInterval, n)
	for i := range out {
		out[i] = SnapInterval{Start: d.U64(), Len: d.U64()}
	}
	return out
}

func decodeStringMap(d *encoding.Decoder) map[string]string {
	n := d.Count(8)
	m := make(map[string]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.String()
		m[k] = d.String()
	}
	return m
}

func skipStringMap(d *encoding.Decoder) {
	n := d.Count(8)
	for i := 0; i < n && d.Err() == nil; i++ {
		d.Bytes()
		d.Bytes()
	}
}
