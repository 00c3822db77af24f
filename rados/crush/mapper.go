package crush

// Workspace is the scratch state of one DoRule call: the per-bucket
// permutations of uniform buckets and the three rule vectors. A Workspace
// belongs to one Map and one goroutine at a time; reusing it avoids all
// allocation in DoRule.
type Workspace struct {
	m      *Map
	gen    uint32
	stamp  []uint32 // per bucket: gen of the call that last touched perm
	permX  []uint32
	permN  []uint32
	perm   []uint32 // all buckets' perm arrays, back to back
	permAt []int    // per bucket: offset in perm
	vec    []int32  // 3*resultMax scratch
}

// NewWorkspace returns a workspace sized for m.
func (m *Map) NewWorkspace() *Workspace {
	n := len(m.Buckets)
	w := &Workspace{
		m:      m,
		stamp:  make([]uint32, n),
		permX:  make([]uint32, n),
		permN:  make([]uint32, n),
		perm:   make([]uint32, m.workSize),
		permAt: make([]int, n),
	}
	off := 0
	for i, b := range m.Buckets {
		w.permAt[i] = off
		if b != nil {
			off += len(b.Items)
		}
	}
	return w
}

// mapper carries the arguments shared by every level of one DoRule call.
type mapper struct {
	m      *Map
	w      *Workspace
	weight []uint32
	args   ChooseArgMap
}

// bucketPermChoose is bucket_perm_choose: a pseudo-random permutation of the
// bucket, computed lazily and cached per (bucket, x) for the call.
func (p *mapper) bucketPermChoose(b *Bucket, x int32, r int) int32 {
	bi := int(-1 - b.ID)
	w := p.w
	size := uint32(len(b.Items))
	pr := uint32(r) % size
	perm := w.perm[w.permAt[bi] : w.permAt[bi]+int(size)]
	permN := w.permN[bi]
	if w.stamp[bi] != w.gen {
		w.stamp[bi] = w.gen
		permN = 0
		w.permX[bi] = 0
	}
	if w.permX[bi] != uint32(x) || permN == 0 {
		w.permX[bi] = uint32(x)
		if pr == 0 {
			s := Hash3(b.Hash, uint32(x), uint32(b.ID), 0) % size
			perm[0] = s
			w.permN[bi] = 0xffff
			return b.Items[s]
		}
		for i := range perm {
			perm[i] = uint32(i)
		}
		permN = 0
	} else if permN == 0xffff {
		for i := uint32(1); i < size; i++ {
			perm[i] = i
		}
		perm[perm[0]] = 0
		permN = 1
	}
	for permN <= pr {
		pn := permN
		if pn < size-1 {
			i := Hash3(b.Hash, uint32(x), uint32(b.ID), pn) % (size - pn)
			if i != 0 {
				perm[pn+i], perm[pn] = perm[pn], perm[pn+i]
			}
		}
		permN++
	}
	w.permN[bi] = permN
	return b.Items[perm[pr]]
}

func listChoose(b *Bucket, x int32, r int) int32 {
	for i := len(b.Items) - 1; i >= 0; i-- {
		w := uint64(Hash4(b.Hash, uint32(x), uint32(b.Items[i]), uint32(r), uint32(b.ID)))
		w &= 0xffff
		w *= uint64(b.SumWeights[i])
		w >>= 16
		if w < uint64(b.ItemWeights[i]) {
			return b.Items[i]
		}
	}
	return b.Items[0]
}

func treeHeight(n int) int {
	h := 0
	for n != 0 && n&1 == 0 {
		h++
		n >>= 1
	}
	return h
}

func treeChoose(b *Bucket, x int32, r int) int32 {
	nn := len(b.NodeWeights)
	n := nn >> 1
	for n&1 == 0 {
		if n <= 0 || n >= nn {
			return b.Items[0] // malformed tree; Ceph would read out of bounds
		}
		w := uint64(b.NodeWeights[n])
		t := (uint64(Hash4(b.Hash, uint32(x), uint32(n), uint32(r), uint32(b.ID))) * w) >> 32
		h := treeHeight(n)
		l := n - (1 << (h - 1))
		if l > 0 && l < nn && t < uint64(b.NodeWeights[l]) {
			n = l
		} else {
			n += 1 << (h - 1)
		}
	}
	if n>>1 >= len(b.Items) {
		return b.Items[0]
	}
	return b.Items[n>>1]
}

func strawChoose(b *Bucket, x int32, r int) int32 {
	high := 0
	var highDraw uint64
	for i, it := range b.Items {
		draw := uint64(Hash3(b.Hash, uint32(x), uint32(it), uint32(r))) & 0xffff
		draw *= uint64(b.Straws[i])
		if i == 0 || draw > highDraw {
			high = i
			highDraw = draw
		}
	}
	return b.Items[high]
}

func straw2Choose(b *Bucket, x int32, r int, arg *ChooseArg, position int) int32 {
	weights := b.ItemWeights
	ids := b.Items
	if arg != nil {
		if n := len(arg.WeightSets); n > 0 {
			if position >= n {
				position = n - 1
			}
			weights = arg.WeightSets[position]
		}
		if arg.IDs != nil {
			ids = arg.IDs
		}
	}
	high := 0
	var highDraw int64
	for i := range b.Items {
		var draw int64
		if weights[i] != 0 {
			u := Hash3(b.Hash, uint32(x), uint32(ids[i]), uint32(r)) & 0xffff
			ln := int64(crushLn(u)) - 0x1000000000000
			draw = ln / int64(weights[i])
		} else {
			draw = -1 << 63
		}
		if i == 0 || draw > highDraw {
			high = i
			highDraw = draw
		}
	}
	return b.Items[high]
}

func (p *mapper) bucketChoose(b *Bucket, x int32, r int, position int) int32 {
	switch b.Alg {
	case BucketUniform:
		return p.bucketPermChoose(b, x, r)
	case BucketList:
		return listChoose(b, x, r)
	case BucketTree:
		return treeChoose(b, x, r)
	case BucketStraw:
		return strawChoose(b, x, r)
	case BucketStraw2:
		var arg *ChooseArg
		if bi := int(-1 - b.ID); bi < len(p.args) {
			arg = &p.args[bi]
		}
		return straw2Choose(b, x, r, arg, position)
	}
	return b.Items[0]
}

// isOut reports whether a device is rejected for this x: weight 0 always,
// partial weights with a probability.
func (p *mapper) isOut(item int32, x int32) bool {
	if int(item) >= len(p.weight) {
		return true
	}
	w := p.weight[item]
	if w >= 0x10000 {
		return false
	}
	if w == 0 {
		return true
	}
	return Hash2(HashRjenkins1, uint32(x), uint32(item))&0xffff >= w
}

func (p *mapper) itemType(item int32) int {
	if item < 0 {
		return int(p.m.Buckets[-1-item].Type)
	}
	return 0
}

// chooseFirstN is crush_choose_firstn: choose numrep distinct items of the
// given type, depth first, retrying on collision or rejection.
func (p *mapper) chooseFirstN(bucket *Bucket, x int32, numrep, typ int,
	out []int32, outpos, outSize int,
	tries, recurseTries, localRetries, localFallbackRetries uint32,
	recurseToLeaf bool, varyR, stable uint32, out2 []int32, parentR int) int {
	count := outSize
	start := outpos
	if stable != 0 {
		start = 0
	}
	var item int32
	for rep := start; rep < numrep && count > 0; rep++ {
		ftotal := uint32(0)
		skipRep := false
		for {
			retryDescent := false
			in := bucket
			flocal := uint32(0)
			for {
				collide := false
				retryBucket := false
				r := rep + parentR + int(ftotal)
				reject := false
				if len(in.Items) == 0 {
					reject = true
				} else {
					if localFallbackRetries > 0 && flocal >= uint32(len(in.Items))>>1 && flocal > localFallbackRetries {
						item = p.bucketPermChoose(in, x, r)
					} else {
						item = p.bucketChoose(in, x, r, outpos)
					}
					if item >= p.m.MaxDevices {
						skipRep = true
						break
					}
					itemtype := p.itemType(item)
					if itemtype != typ {
						if item >= 0 {
							skipRep = true
							break
						}
						in = p.m.Buckets[-1-item]
						continue
					}
					for i := 0; i < outpos; i++ {
						if out[i] == item {
							collide = true
							break
						}
					}
					if !collide && recurseToLeaf {
						if item < 0 {
							subR := 0
							if varyR != 0 {
								subR = r >> (varyR - 1)
							}
							n := outpos + 1
							if stable != 0 {
								n = 1
							}
							if p.chooseFirstN(p.m.Buckets[-1-item], x, n, 0,
								out2, outpos, count, recurseTries, 0,
								localRetries, localFallbackRetries, false,
								varyR, stable, nil, subR) <= outpos {
								reject = true
							}
						} else {
							out2[outpos] = item
						}
					}
					if !reject && !collide && itemtype == 0 {
						reject = p.isOut(item, x)
					}
				}
				if reject || collide {
					ftotal++
					flocal++
					switch {
					case collide && flocal <= localRetries:
						retryBucket = true
					case localFallbackRetries > 0 && flocal <= uint32(len(in.Items))+localFallbackRetries:
						retryBucket = true
					case ftotal < tries:
						retryDescent = true
					default:
						skipRep = true
					}
				}
				if !retryBucket {
					break
				}
			}
			if !retryDescent || skipRep {
				break
			}
		}
		if skipRep {
			continue
		}
		out[outpos] = item
		outpos++
		count--
	}
	return outpos
}

// chooseIndep is crush_choose_indep: breadth first and positionally stable;
// positions that cannot be filled hold ItemNone.
func (p *mapper) chooseIndep(bucket *Bucket, x int32, left, numrep, typ int,
	out []int32, outpos int, tries, recurseTries uint32, recurseToLeaf bool,
	out2 []int32, parentR int) {
	endpos := outpos + left
	for rep := outpos; rep < endpos; rep++ {
		out[rep] = ItemUndef
		if out2 != nil {
			out2[rep] = ItemUndef
		}
	}
	for ftotal := uint32(0); left > 0 && ftotal < tries; ftotal++ {
		for rep := outpos; rep < endpos; rep++ {
			if out[rep] != ItemUndef {
				continue
			}
			in := bucket
			for {
				r := rep + parentR
				if in.Alg == BucketUniform && len(in.Items)%numrep == 0 {
					r += (numrep + 1) * int(ftotal)
				} else {
					r += numrep * int(ftotal)
				}
				if len(in.Items) == 0 {
					break
				}
				item := p.bucketChoose(in, x, r, outpos)
				if item >= p.m.MaxDevices {
					out[rep] = ItemNone
					if out2 != nil {
						out2[rep] = ItemNone
					}
					left--
					break
				}
				itemtype := p.itemType(item)
				if itemtype != typ {
					if item >= 0 {
						out[rep] = ItemNone
						if out2 != nil {
							out2[rep] = ItemNone
						}
						left--
						break
					}
					in = p.m.Buckets[-1-item]
					continue
				}
				collide := false
				for i := outpos; i < endpos; i++ {
					if out[i] == item {
						collide = true
						break
					}
				}
				if collide {
					break
				}
				if recurseToLeaf {
					if item < 0 {
						p.chooseIndep(p.m.Buckets[-1-item], x, 1, numrep, 0,
							out2, rep, recurseTries, 0, false, nil, r)
						if out2[rep] == ItemNone {
							break
						}
					} else {
						out2[rep] = item
					}
				}
				if itemtype == 0 && p.isOut(item, x) {
					break
				}
				out[rep] = item
				left--
				break
			}
		}
	}
	for rep := outpos; rep < endpos; rep++ {
		if out[rep] == ItemUndef {
			out[rep] = ItemNone
		}
		if out2 != nil && out2[rep] == ItemUndef {
			out2[rep] = ItemNone
		}
	}
}

// maxTries bounds every retry count a map or rule can set. Ceph bounds
// nothing, so a corrupt map could make it spin for billions of rounds; real
// maps use at most a few hundred (the default total is 50).
const maxTries = 1000

func clampTries(n uint32) uint32 { return min(n, maxTries) }

// DoRule is crush_do_rule: it runs rule ruleno for input x and fills result
// (whose length is the wanted replica count), returning how many entries it
// set. weight holds the device weights (16.16; 0x10000 = fully in), args the
// choose_args to apply or nil. ws may be nil (one is allocated) and must
// belong to this map.
func (m *Map) DoRule(ruleno int, x int32, result []int32, weight []uint32, args ChooseArgMap, ws *Workspace) int {
	if ruleno < 0 || ruleno >= len(m.Rules) || m.Rules[ruleno] == nil {
		return 0
	}
	rule := m.Rules[ruleno]
	resultMax := len(result)
	if resultMax == 0 {
		return 0
	}
	if ws == nil || ws.m != m {
		ws = m.NewWorkspace()
	}
	ws.gen++
	if ws.gen == 0 { // wrapped: forget every stamp
		clear(ws.stamp)
		ws.gen = 1
	}
	if rule.Type == RuleMSRFirstN || rule.Type == RuleMSRIndep {
		p := mapper{m: m, w: ws, weight: weight, args: args}
		return p.msrDoRule(rule, x, result)
	}
	if cap(ws.vec) < 3*resultMax {
		ws.vec = make([]int32, 3*resultMax)
	}
	vec := ws.vec[:3*resultMax]
	a, b, c := vec[:resultMax], vec[resultMax:2*resultMax], vec[2*resultMax:]
	p := mapper{m: m, w: ws, weight: weight, args: args}

	t := ruleTries{
		choose:               clampTries(m.ChooseTotalTries + 1),
		localRetries:         clampTries(m.ChooseLocalTries),
		localFallbackRetries: clampTries(m.ChooseLocalFallbackTries),
		varyR:                uint32(m.ChooseLeafVaryR),
		stable:               uint32(m.ChooseLeafStable),
	}

	resultLen := 0
	w, o := a, b
	wsize := 0
	for _, st := range rule.Steps {
		switch st.Op {
		case OpTake:
			if (st.Arg1 >= 0 && st.Arg1 < m.MaxDevices) || m.Bucket(st.Arg1) != nil {
				w[0] = st.Arg1
				wsize = 1
			}
		case OpChooseLeafFirstN, OpChooseFirstN, OpChooseLeafIndep, OpChooseIndep:
			if wsize == 0 {
				break
			}
			wsize = p.chooseStep(st, &t, x, w[:wsize], o, c)
			w, o = o, w
		case OpEmit:
			for i := 0; i < wsize && resultLen < resultMax; i++ {
				result[resultLen] = w[i]
				resultLen++
			}
			wsize = 0
		default:
			t.set(st)
		}
	}
	return resultLen
}

// ruleTries are the retry tunables a rule runs with: the map's, changed by
// the rule's SET_* steps.
type ruleTries struct {
	choose, leaf                       uint32 // choose_total_tries+1; chooseleaf tries (0: per descend_once)
	localRetries, localFallbackRetries uint32
	varyR, stable                      uint32
}

// set applies one SET_* step (other steps are ignored).
func (t *ruleTries) set(st Step) {
	switch st.Op {
	case OpSetChooseTries:
		if st.Arg1 > 0 {
			t.choose = clampTries(uint32(st.Arg1))
		}
	case OpSetChooseLeafTries:
		if st.Arg1 > 0 {
			t.leaf = clampTries(uint32(st.Arg1))
		}
	case OpSetChooseLocalTries:
		if st.Arg1 >= 0 {
			t.localRetries = clampTries(uint32(st.Arg1))
		}
	case OpSetChooseLocalFallbackTries:
		if st.Arg1 >= 0 {
			t.localFallbackRetries = clampTries(uint32(st.Arg1))
		}
	case OpSetChooseLeafVaryR:
		if st.Arg1 >= 0 {
			t.varyR = uint32(st.Arg1)
		}
	case OpSetChooseLeafStable:
		if st.Arg1 >= 0 {
			t.stable = uint32(st.Arg1)
		}
	}
}

// chooseStep runs one CHOOSE(LEAF)_FIRSTN/INDEP step over the working
// set w, writing the chosen items to o (c is the leaf scratch, as long as
// o) and returning how many it wrote. len(o) is the rule's result size.
func (p *mapper) chooseStep(st Step, t *ruleTries, x int32, w, o, c []int32) int {
	m, resultMax := p.m, len(o)
	firstn := st.Op == OpChooseLeafFirstN || st.Op == OpChooseFirstN
	recurseToLeaf := st.Op == OpChooseLeafFirstN || st.Op == OpChooseLeafIndep
	osize := 0
	for i := range w {
		numrep := int(st.Arg1)
		if numrep <= 0 {
			numrep += resultMax
			if numrep <= 0 {
				continue
			}
		}
		bkt := m.Bucket(w[i])
		if w[i] >= 0 || bkt == nil {
			continue
		}
		if osize >= resultMax {
			continue
		}
		if firstn {
			var recurseTries uint32
			switch {
			case t.leaf != 0:
				recurseTries = t.leaf
			case m.ChooseLeafDescendOnce != 0:
				recurseTries = 1
			default:
				recurseTries = t.choose
			}
			osize += p.chooseFirstN(bkt, x, numrep, int(st.Arg2),
				o[osize:], 0, resultMax-osize, t.choose, recurseTries,
				t.localRetries, t.localFallbackRetries, recurseToLeaf,
				t.varyR, t.stable, c[osize:], 0)
		} else {
			outSize := numrep
			if resultMax-osize < outSize {
				outSize = resultMax - osize
			}
			lt := t.leaf
			if lt == 0 {
				lt = 1
			}
			p.chooseIndep(bkt, x, outSize, numrep, int(st.Arg2),
				o[osize:], 0, t.choose, lt, recurseToLeaf, c[osize:], 0)
			osize += outSize
		}
	}
	if recurseToLeaf {
		copy(o[:osize], c[:osize])
	}
	return osize
}
