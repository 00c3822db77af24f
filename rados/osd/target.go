package osd

import (
	"hash/maphash"
	"syscall"

	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// target is where a request goes under one map, with what is needed to
// tell whether a newer map requires a resend.
type target struct {
	epoch     uint32
	pool      int64 // after overlay and redirect
	oid       string
	key       string
	ns        string
	rawHash   uint32 // the full placement hash sent in MOSDOp
	spg       SPG
	osd       int32 // acting primary; -1 when none is up
	sets      uint64
	size      uint8
	minSize   uint8
	pgNum     uint32
	lastForce uint32
	// paused: the map's pauserd/pausewr flag holds the request back
	// (Objecter's op_target_t::paused); it is sent once a map without
	// the flag arrives.
	paused bool
}

var setSeed = maphash.MakeSeed()

// fingerprint hashes the up and acting sets so changes are cheap to see.
func fingerprint(mp *osdmap.Mapping) uint64 {
	var h maphash.Hash
	h.SetSeed(setSeed)
	var b [4]byte
	put := func(v int32) {
		b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		h.Write(b[:])
	}
	for _, o := range mp.Up {
		put(o)
	}
	put(mp.UpPrimary)
	put(-7)
	for _, o := range mp.Acting {
		put(o)
	}
	put(mp.ActingPrimary)
	return h.Sum64()
}

// hobj returns the hobject_t of the target (for backoff ranges).
func (t *target) hobj(snap uint64) HObject {
	return HObject{Key: t.key, Oid: t.oid, Snap: snap, Hash: t.rawHash, Namespace: t.ns, Pool: t.pool}
}

// checkFlags returns the error a request gets at once under map m: pool
// gone, full or over quota. A paused cluster is not an error: see
// pausedBy.
func checkFlags(m *osdmap.OSDMap, r *request, pool int64) error {
	p := m.Pools[pool]
	if p == nil {
		return errNoPool
	}
	if r.write && r.flags&(FlagFullTry|FlagFullForce) == 0 {
		if p.Flags&osdmap.PoolFlagFullQuota != 0 {
			return syscall.EDQUOT
		}
		if m.Flags&osdmap.FlagFull != 0 || p.Flags&osdmap.PoolFlagFull != 0 {
			return syscall.ENOSPC
		}
	}
	return nil
}

// pausedBy reports whether m's pausewr (writes) or pauserd (reads) flag
// holds r back. Like Objecter, the client keeps such a request queued and
// sends it when a map clears the flag; only its context ends the wait.
func pausedBy(m *osdmap.OSDMap, r *request) bool {
	if r.write {
		return m.Flags&osdmap.FlagPauseWrite != 0
	}
	return m.Flags&osdmap.FlagPauseRead != 0
}

// calcTarget computes r's target under m (Objecter::_calc_target, for the
// primary only). mp is scratch space.
func calcTarget(m *osdmap.OSDMap, r *request, mp *osdmap.Mapping) (target, error) {
	var t target
	t.epoch = m.Epoch
	t.pool = r.req.Pool
	t.oid = r.req.Object
	t.key = r.req.Key
	t.ns = r.req.Namespace
	if r.redirect != nil {
		t.pool = r.redirect.Locator.Pool
		if r.redirect.Locator.Key != "" {
			t.key = r.redirect.Locator.Key
		}
		t.ns = r.redirect.Locator.Namespace
		if r.redirect.Object != "" {
			t.oid = r.redirect.Object
		}
	}
	p := m.Pools[t.pool]
	if p == nil {
		return t, errNoPool
	}
	if r.flags&FlagIgnoreOverlay == 0 {
		if r.write && p.WriteTier >= 0 && p.WriteTier != t.pool {
			t.pool = p.WriteTier
		} else if !r.write && p.ReadTier >= 0 && p.ReadTier != t.pool {
			t.pool = p.ReadTier
		}
		if p = m.Pools[t.pool]; p == nil {
			return t, errNoPool
		}
	}
	if err := checkFlags(m, r, t.pool); err != nil {
		return t, err
	}
	t.paused = pausedBy(m, r)
	var raw osdmap.PG
	if r.pg {
		raw = osdmap.PG{Pool: t.pool, Seed: r.pgSeed}
	} else {
		key := t.key
		if key == "" {
			key = t.oid
		}
		raw = osdmap.PG{Pool: t.pool, Seed: p.HashKey(key, t.ns)}
	}
	t.rawHash = raw.Seed
	if err := m.MapPG(raw, mp); err != nil {
		return t, errNoPool
	}
	t.spg = SPG{PG: mp.PG, Shard: noShard}
	t.osd = mp.ActingPrimary
	if t.osd >= 0 && !m.IsUp(t.osd) {
		t.osd = -1
	}
	if !p.CanShiftOSDs() && t.osd >= 0 {
		for i, o := range mp.Acting {
			if o == t.osd {
				t.spg.Shard = int8(i)
				break
			}
		}
	}
	t.sets = fingerprint(mp)
	t.size = p.Size
	t.minSize = p.MinSize
	t.pgNum = p.PGNum
	t.lastForce = p.ResendEpoch()
	return t, nil
}

// needsResend reports whether moving from old to nt requires sending the
// request again (new interval, split, forced resend).
func needsResend(old, nt *target) bool {
	return old.osd != nt.osd || old.sets != nt.sets || old.spg != nt.spg ||
		old.size != nt.size || old.minSize != nt.minSize || old.pgNum != nt.pgNum ||
		nt.lastForce > old.lastForce || old.pool != nt.pool
}

func osdmapPG(pool int64, seed uint32) osdmap.PG { return osdmap.PG{Pool: pool, Seed: seed} }
