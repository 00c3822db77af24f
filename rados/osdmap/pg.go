package osdmap

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// PG identifies a placement group: a pool and a placement seed.
type PG struct {
	Pool int64
	Seed uint32
}

// String formats a pg the way Ceph does: pool, a dot, the seed in hex.
func (p PG) String() string {
	return strconv.FormatInt(p.Pool, 10) + "." + strconv.FormatUint(uint64(p.Seed), 16)
}

// ParsePG parses "POOL.SEEDHEX".
func ParsePG(s string) (PG, error) {
	a, b, ok := strings.Cut(s, ".")
	if !ok {
		return PG{}, fmt.Errorf("osdmap: bad pgid %q", s)
	}
	pool, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return PG{}, fmt.Errorf("osdmap: bad pgid %q: %w", s, err)
	}
	seed, err := strconv.ParseUint(b, 16, 32)
	if err != nil {
		return PG{}, fmt.Errorf("osdmap: bad pgid %q: %w", s, err)
	}
	return PG{Pool: pool, Seed: uint32(seed)}, nil
}

// pgSize is the encoded size of a pg_t.
const pgSize = 17

// decodePG reads a pg_t: u8 version 1, u64 pool, u32 seed, i32 preferred.
func decodePG(d *encoding.Decoder) PG {
	v := d.U8()
	if v != 1 && d.Err() == nil {
		d.Fail("pg_t", fmt.Errorf("%w: version %d", encoding.ErrIncompatible, v))
		return PG{}
	}
	pool := d.U64()
	seed := d.U32()
	d.I32() // preferred, always -1 since Luminous
	return PG{Pool: int64(pool), Seed: seed}
}

func encodePG(e *encoding.Encoder, p PG) {
	e.U8(1)
	e.U64(uint64(p.Pool))
	e.U32(p.Seed)
	e.I32(-1)
}
