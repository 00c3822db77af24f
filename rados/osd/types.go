package osd

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// noShard is shard_id_t::NO_SHARD, used by replicated pools.
const noShard int8 = -1

// encodePG appends a pg_t: u8 version 1, u64 pool, u32 seed, i32 preferred
// (always -1).
func encodePG(e *encoding.Encoder, pg osdmap.PG) {
	e.U8(1)
	e.U64(uint64(pg.Pool))
	e.U32(pg.Seed)
	e.I32(-1)
}

// decodePG reads a pg_t.
func decodePG(d *encoding.Decoder) osdmap.PG {
	v := d.U8()
	if v != 1 && d.Err() == nil {
		d.Fail("pg_t", fmt.Errorf("%w: pg_t version %d", encoding.ErrIncompatible, v))
		return osdmap.PG{}
	}
	pool := d.I64()
	seed := d.U32()
	d.I32()
	return osdmap.PG{Pool: pool, Seed: seed}
}

// SPG is a spg_t: a pg and the shard of an erasure-coded pool (-1 for
// replicated pools).
type SPG struct {
	PG    osdmap.PG
	Shard int8
}

func encodeSPG(e *encoding.Encoder, s SPG) {
	m := e.StructBegin(1, 1)
	encodePG(e, s.PG)
	e.U8(uint8(s.Shard))
	e.StructEnd(m)
}

func decodeSPG(d *encoding.Decoder) SPG {
	sd, _ := d.Struct(1)
	pg := decodePG(sd)
	sh := int8(sd.U8())
	return SPG{PG: pg, Shard: sh}
}

// Locator is an object_locator_t: where an object lives (pool, optional
// locator key that replaces the name for placement, namespace).
type Locator struct {
	Pool      int64
	Key       string
	Namespace string
	Hash      int64 // -1 unless the placement hash is given explicitly
}

// encodeLocator appends object_locator_t v6 compat 3, as Ceph's own
// clients do (compat 6 only when an explicit hash is set).
func encodeLocator(e *encoding.Encoder, pool int64, key, ns string, hash int64) {
	compat := uint8(3)
	if hash != -1 {
		compat = 6
	}
	m := e.StructBegin(6, compat)
	e.I64(pool)
	e.I32(-1) // preferred
	e.String(key)
	e.String(ns)
	e.I64(hash)
	e.StructEnd(m)
}

func decodeLocator(d *encoding.Decoder) Locator {
	sd, h := d.Struct(6)
	var l Locator
	if h.Version < 2 {
		// A pre-Argonaut locator; nothing sends it today.
		d.Fail("object_locator_t", fmt.Errorf("%w: object_locator_t v%d", encoding.ErrIncompatible, h.Version))
		return l
	}
	l.Pool = sd.I64()
	sd.I32() // preferred
	l.Key = sd.String()
	if h.Version >= 5 {
		l.Namespace = sd.String()
	}
	l.Hash = -1
	if h.Version >= 6 {
		l.Hash = sd.I64()
	}
	return l
}

// HObject is an hobject_t: the OSD's full name of an object, ordered by
// [HObject.Compare]. Backoff ranges and listing cursors are HObjects.
type HObject struct {
	Key       string
	Oid       string
	Snap      uint64
	Hash      uint32
	Max       bool
	Namespace string
	Pool      int64
}

// MinHObject is hobject_t(): the smallest object (pool INT64_MIN).
func MinHObject() HObject { return HObject{Pool: math.MinInt64} }

// IsMax reports whether h is the largest hobject_t.
func (h *HObject) IsMax() bool { return h.Max }

// IsMin reports whether h is hobject_t().
func (h *HObject) IsMin() bool {
	return !h.Max && h.Pool == math.MinInt64 && h.Hash == 0 && h.Oid == "" && h.Key == "" && h.Namespace == "" && h.Snap == 0
}

func (h *HObject) effectiveKey() string {
	if h.Key != "" {
		return h.Key
	}
	return h.Oid
}

// Compare orders hobjects the way the OSD does (hobject_t's cmp in the
// "bitwise" sort: max, pool, bit-reversed hash, namespace, key, name,
// snap). It returns -1, 0 or 1.
func (h *HObject) Compare(o *HObject) int {
	switch {
	case h.Max != o.Max:
		if h.Max {
			return 1
		}
		return -1
	case h.Pool != o.Pool:
		return cmpOrd(h.Pool, o.Pool)
	}
	if a, b := bits.Reverse32(h.Hash), bits.Reverse32(o.Hash); a != b {
		return cmpOrd(a, b)
	}
	if h.Namespace != o.Namespace {
		return cmpOrd(h.Namespace, o.Namespace)
	}
	if !(h.Key == "" && o.Key == "") {
		if a, b := h.effectiveKey(), o.effectiveKey(); a != b {
			return cmpOrd(a, b)
		}
	}
	if h.Oid != o.Oid {
		return cmpOrd(h.Oid, o.Oid)
	}
	return cmpOrd(h.Snap, o.Snap)
}

func cmpOrd[T int64 | uint32 | uint64 | string](a, b T) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// EncodeHObject appends h as hobject_t v4 compat 3.
func EncodeHObject(e *encoding.Encoder, h *HObject) {
	m := e.StructBegin(4, 3)
	e.String(h.Key)
	e.String(h.Oid)
	e.U64(h.Snap)
	e.U32(h.Hash)
	e.Bool(h.Max)
	e.String(h.Namespace)
	e.I64(h.Pool)
	e.StructEnd(m)
}

// DecodeHObject reads an hobject_t.
func DecodeHObject(d *encoding.Decoder) HObject {
	var h HObject
	sd, hd := d.Struct(4)
	if hd.Version < 1 && d.Err() == nil {
		d.Fail("hobject_t", fmt.Errorf("%w: hobject_t v%d", encoding.ErrIncompatible, hd.Version))
		return h
	}
	h.Key = sd.String()
	h.Oid = sd.String()
	h.Snap = sd.U64()
	h.Hash = sd.U32()
	if hd.Version >= 2 {
		h.Max = sd.Bool()
	}
	if hd.Version >= 4 {
		h.Namespace = sd.String()
		h.Pool = sd.I64()
		// Old encodings used pool -1 for hobject_t(); normalise it.
		if h.Pool == -1 && h.Snap == 0 && h.Hash == 0 && !h.Max && h.Oid == "" {
			h.Pool = math.MinInt64
		}
	}
	return h
}
