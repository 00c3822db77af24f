package crush

import (
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Sanity bounds: far above any real cluster, low enough that a hostile
// header cannot make us allocate much before the byte checks catch it.
const (
	maxBuckets = 1 << 20
	maxRules   = 1 << 16
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Decode parses an encoded CRUSH map (CrushWrapper::encode output, as
// embedded in an OSDMap or written by crushtool -c / ceph osd getcrushmap).
// Trailing sections the decoder does not know are ignored.
func Decode(b []byte) (*Map, error) {
	d := encoding.NewDecoder(b)
	m, err := decodeMap(d)
	if err != nil {
		return nil, err
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	if err := m.finalize(); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeMap(d *encoding.Decoder) (*Map, error) {
	magic := d.U32()
	if d.Err() != nil {
		return nil, d.Err()
	}
	if magic != Magic {
		return nil, malformed("bad magic %#x", magic)
	}
	nb := d.I32()
	nr := d.U32()
	d.I32() // max_devices: recomputed from the buckets, as crush_finalize does
	if d.Err() != nil {
		return nil, d.Err()
	}
	// Every bucket slot takes at least 4 bytes, every rule slot 4 bytes.
	if nb < 0 || nb > maxBuckets || int(nb)*4 > d.Len() {
		return nil, malformed("max_buckets %d", nb)
	}
	if nr > maxRules || int(nr)*4 > d.Len() {
		return nil, malformed("max_rules %d", nr)
	}
	m := &Map{Tunables: legacyTunables()}
	m.Buckets = make([]*Bucket, nb)
	for i := range m.Buckets {
		b, err := decodeBucket(d)
		if err != nil {
			return nil, err
		}
		if b != nil && b.ID != int32(-1-i) {
			return nil, malformed("bucket slot %d holds id %d", i, b.ID)
		}
		m.Buckets[i] = b
	}
	m.Rules = make([]*Rule, nr)
	for i := range m.Rules {
		if d.U32() == 0 {
			continue
		}
		n := d.Count(12)
		r := &Rule{}
		ruleset := d.U8()
		r.Type = d.U8()
		r.MinSize = d.U8()
		r.MaxSize = d.U8()
		if d.Err() != nil {
			return nil, d.Err()
		}
		if int(ruleset) != i&0xff {
			// Ceph rejects maps whose ruleset differs from the rule id; the
			// u8 wraps for ids >= 256.
			return nil, malformed("rule %d has ruleset %d", i, ruleset)
		}
		r.Steps = make([]Step, n)
		for j := range r.Steps {
			r.Steps[j] = Step{Op: d.U32(), Arg1: d.I32(), Arg2: d.I32()}
		}
		m.Rules[i] = r
	}
	m.TypeNames = decodeNameMap(d)
	m.Names = decodeNameMap(d)
	m.RuleNames = decodeNameMap(d)
	if d.Err() != nil {
		return nil, d.Err()
	}
	// Tunables and later sections are each optional: present while bytes remain.
	if d.Len() > 0 {
		m.ChooseLocalTries = d.U32()
		m.ChooseLocalFallbackTries = d.U32()
		m.ChooseTotalTries = d.U32()
	}
	if d.Len() > 0 {
		m.ChooseLeafDescendOnce = d.U32()
	}
	if d.Len() > 0 {
		m.ChooseLeafVaryR = d.U8()
	}
	if d.Len() > 0 {
		m.StrawCalcVersion = d.U8()
	}
	if d.Len() > 0 {
		m.AllowedBucketAlgs = d.U32()
	}
	if d.Len() > 0 {
		m.ChooseLeafStable = d.U8()
	}
	if d.Len() > 0 {
		decodeClasses(d, m)
	}
	if d.Len() > 0 {
		if err := decodeChooseArgs(d, m); err != nil {
			return nil, err
		}
	}
	if d.Len() > 0 {
		m.MSRDescents = d.U32()
		m.MSRCollisionTries = d.U32()
	}
	return m, d.Err()
}

func decodeBucket(d *encoding.Decoder) (*Bucket, error) {
	alg := d.U32()
	if d.Err() != nil {
		return nil, d.Err()
	}
	if alg == 0 {
		return nil, nil
	}
	if alg < BucketUniform || alg > BucketStraw2 {
		return nil, malformed("unsupported bucket algorithm %d", alg)
	}
	b := &Bucket{}
	b.ID = d.I32()
	b.Type = d.U16()
	b.Alg = d.U8()
	b.Hash = d.U8()
	b.Weight = d.U32()
	n := d.Count(4)
	if d.Err() != nil {
		return nil, d.Err()
	}
	if uint32(b.Alg) != alg {
		return nil, malformed("bucket %d: alg %d then %d", b.ID, alg, b.Alg)
	}
	b.Items = make([]int32, n)
	for i := range b.Items {
		b.Items[i] = d.I32()
	}
	u32s := func(k int) []uint32 {
		if k*4 > d.Len() {
			d.Fail("crush bucket weights", encoding.ErrShort)
			return nil
		}
		s := make([]uint32, k)
		for i := range s {
			s[i] = d.U32()
		}
		return s
	}
	switch b.Alg {
	case BucketUniform:
		b.ItemWeight = d.U32()
	case BucketList:
		if n*8 > d.Len() {
			d.Fail("crush list bucket", encoding.ErrShort)
			break
		}
		b.ItemWeights = make([]uint32, n)
		b.SumWeights = make([]uint32, n)
		for i := 0; i < n; i++ {
			b.ItemWeights[i] = d.U32()
			b.SumWeights[i] = d.U32()
		}
	case BucketTree:
		b.NodeWeights = u32s(int(d.U8()))
	case BucketStraw:
		if n*8 > d.Len() {
			d.Fail("crush straw bucket", encoding.ErrShort)
			break
		}
		b.ItemWeights = make([]uint32, n)
		b.Straws = make([]uint32, n)
		for i := 0; i < n; i++ {
			b.ItemWeights[i] = d.U32()
			b.Straws[i] = d.U32()
		}
	case BucketStraw2:
		b.ItemWeights = u32s(n)
	}
	return b, d.Err()
}

// decodeNameMap reads a map<int32,string>. Old encoders wrote 64-bit keys;
// like Ceph, a zero string length means the key had another 32 bits.
func decodeNameMap(d *encoding.Decoder) map[int32]string {
	n := d.Count(8)
	m := make(map[int32]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I32()
		l := d.U32()
		if l == 0 {
			l = d.U32()
		}
		if uint64(l) > uint64(d.Len()) {
			d.Fail("crush name", encoding.ErrBadLength)
			return m
		}
		m[k] = string(d.Raw(int(l)))
	}
	return m
}

func decodeClasses(d *encoding.Decoder, m *Map) {
	n := d.Count(8)
	m.ClassMap = make(map[int32]int32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I32()
		m.ClassMap[k] = d.I32()
	}
	n = d.Count(8)
	m.ClassNames = make(map[int32]string, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I32()
		m.ClassNames[k] = d.String()
	}
	n = d.Count(8)
	m.ClassBuckets = make(map[int32]map[int32]int32, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		k := d.I32()
		c := d.Count(8)
		inner := make(map[int32]int32, c)
		for j := 0; j < c && d.Err() == nil; j++ {
			ck := d.I32()
			inner[ck] = d.I32()
		}
		m.ClassBuckets[k] = inner
	}
}

func decodeChooseArgs(d *encoding.Decoder, m *Map) error {
	n := d.Count(12)
	m.ChooseArgs = make(map[int64]ChooseArgMap, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		idx := d.I64()
		args := make(ChooseArgMap, len(m.Buckets))
		c := d.Count(12)
		for j := 0; j < c && d.Err() == nil; j++ {
			bi := d.U32()
			if d.Err() != nil {
				break
			}
			if uint64(bi) >= uint64(len(m.Buckets)) || m.Buckets[bi] == nil {
				return malformed("choose_args %d: bucket index %d", idx, bi)
			}
			b := m.Buckets[bi]
			a := &args[bi]
			np := d.Count(4)
			a.WeightSets = make([][]uint32, 0, np)
			for k := 0; k < np && d.Err() == nil; k++ {
				sz := d.Count(4)
				ws := make([]uint32, sz)
				for l := range ws {
					ws[l] = d.U32()
				}
				if d.Err() == nil && sz != len(b.Items) {
					return malformed("choose_args %d: bucket %d weight set of %d for %d items", idx, b.ID, sz, len(b.Items))
				}
				a.WeightSets = append(a.WeightSets, ws)
			}
			ni := d.Count(4)
			if ni > 0 {
				if ni != len(b.Items) {
					return malformed("choose_args %d: bucket %d has %d ids for %d items", idx, b.ID, ni, len(b.Items))
				}
				a.IDs = make([]int32, ni)
				for k := range a.IDs {
					a.IDs[k] = d.I32()
				}
			}
			if len(a.WeightSets) == 0 {
				a.WeightSets = nil
			}
		}
		m.ChooseArgs[idx] = args
	}
	return d.Err()
}

// finalize recomputes max_devices, sizes the workspace and checks that the
// hierarchy is well formed: every bucket item refers to a device or an
// existing bucket and there are no cycles. Tree buckets are bounds-checked
// while mapping instead: real maps may have trailing nodes past their items.
func (m *Map) finalize() error {
	m.MaxDevices = 0
	m.workSize = 0
	for _, b := range m.Buckets {
		if b == nil {
			continue
		}
		m.workSize += len(b.Items)
		for _, it := range b.Items {
			if it >= 0 {
				if it == ItemNone || it == ItemUndef {
					return malformed("bucket %d holds reserved item %d", b.ID, it)
				}
				if it >= m.MaxDevices {
					m.MaxDevices = it + 1
				}
			} else if m.Bucket(it) == nil {
				return malformed("bucket %d holds missing bucket %d", b.ID, it)
			}
		}
	}
	// Cycle check: iterative DFS with colours.
	state := make([]uint8, len(m.Buckets)) // 0 new, 1 on stack, 2 done
	type frame struct{ bi, next int }
	var stack []frame
	for start := range m.Buckets {
		if m.Buckets[start] == nil || state[start] != 0 {
			continue
		}
		stack = append(stack[:0], frame{start, 0})
		state[start] = 1
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			b := m.Buckets[f.bi]
			if f.next >= len(b.Items) {
				state[f.bi] = 2
				stack = stack[:len(stack)-1]
				continue
			}
			it := b.Items[f.next]
			f.next++
			if it >= 0 {
				continue
			}
			ci := int(-1 - it)
			switch state[ci] {
			case 1:
				return malformed("bucket %d is part of a cycle", it)
			case 0:
				state[ci] = 1
				stack = append(stack, frame{ci, 0})
			}
		}
	}
	return nil
}
