package crush

// MSR ("multi-step retry") rules, Squid and later: crush_msr_do_rule and
// its helpers in Ceph's mapper.c. A rule is a prefix of SET_MSR_* steps
// followed by blocks of TAKE, CHOOSE_MSR..., EMIT. Each block fills its
// output range depth first; out OSDs are retried by whole new descents
// (msr_descents), collisions locally (msr_collision_tries).

// msrState carries one crush_msr_do_rule call.
type msrState struct {
	p              *mapper
	rule           *Rule
	x              int32
	resultMax      int
	descents       uint32
	collisionTries uint32
	out            []int32
	returned       int
	// step vectors of the current block: vecs[i] belongs to step start+i
	vecs      [][]int32
	start     int // first CHOOSE_MSR step of the block
	end       int // the block's EMIT step
	firstn    bool
	vecBacker []int32
}

func msrScanConfig(steps []Step, descents, collisionTries *uint32) int {
	i := 0
	for ; i < len(steps); i++ {
		switch steps[i].Op {
		case OpSetMSRDescents:
			*descents = uint32(steps[i].Arg1)
		case OpSetMSRCollisionTries:
			*collisionTries = uint32(steps[i].Arg1)
		default:
			return i
		}
	}
	return i
}

// msrScanNext validates a TAKE CHOOSE_MSR* EMIT block starting at stepno
// and returns its fan-out and EMIT step.
func msrScanNext(r *Rule, resultMax, stepno int) (total, emit int, ok bool) {
	if stepno+1 >= len(r.Steps) || r.Steps[stepno].Op != OpTake {
		return 0, 0, false
	}
	total = 1
	for stepno++; stepno < len(r.Steps); stepno++ {
		st := r.Steps[stepno]
		if st.Op == OpEmit {
			return total, stepno, true
		}
		if st.Op != OpChooseMSR || st.Arg1 < 0 {
			return 0, 0, false
		}
		n := int(st.Arg1)
		if n == 0 {
			n = resultMax
		}
		total *= n
		if total > 1<<16 {
			return 0, 0, false
		}
	}
	return 0, 0, false
}

func (s *msrState) leafPopulated(start, end int) bool {
	leaf := s.vecs[len(s.vecs)-1]
	for i := start; i < end; i++ {
		if leaf[i] == ItemUndef {
			return false
		}
	}
	return true
}

// descend walks down from b until a device or a bucket of type typ.
func (s *msrState) descend(b *Bucket, typ int, tryno, localTryno uint32, index int) (int32, bool) {
	r := int((uint32(tryno)*uint32(s.resultMax)+uint32(index))<<16 + localTryno)
	for {
		if len(b.Items) == 0 {
			return 0, false
		}
		c := s.p.bucketChoose(b, s.x, r, index)
		if c >= 0 {
			return c, true
		}
		b = s.p.m.Buckets[-1-c]
		if int(b.Type) == typ {
			return c, true
		}
	}
}

func (s *msrState) validCandidate(stepno, exStart, exEnd, inStart, inEnd int, c int32) bool {
	v := s.vecs[stepno-s.start]
	for i := exStart; i < exEnd; i++ {
		if v[i] == c {
			return i >= inStart && i < inEnd
		}
	}
	return true
}

func (s *msrState) pushUsed(stepno, start, end int, c int32) bool {
	v := s.vecs[stepno-s.start]
	for i := start; i < end; i++ {
		if v[i] == c {
			return false
		} else if v[i] == ItemUndef {
			v[i] = c
			return true
		}
	}
	return false
}

func (s *msrState) popUsed(stepno, start, end int) {
	v := s.vecs[stepno-s.start]
	for i := end - 1; i >= start; i-- {
		if v[i] != ItemUndef {
			v[i] = ItemUndef
			return
		}
	}
}

func (s *msrState) emit(position int, item int32) {
	if position >= len(s.out) || s.returned >= len(s.out) {
		return
	}
	if s.firstn {
		s.out[s.returned] = item
	} else {
		s.out[position] = item
	}
	s.returned++
}

// choose is crush_msr_choose: fill [startIdx, endIdx) below bucket with the
// CHOOSE_MSR steps from stepno on.
func (s *msrState) choose(b *Bucket, totalDesc, startIdx, endIdx, stepno int, tryno uint32) int {
	st := s.rule.Steps[stepno]
	numStrides := int(st.Arg1)
	if numStrides == 0 {
		numStrides = s.resultMax
	}
	if numStrides <= 0 || totalDesc%numStrides != 0 {
		return 0
	}
	strideLen := totalDesc / numStrides
	undo := make([]int32, numStrides)
	for i := range undo {
		undo[i] = ItemUndef
	}
	mapped := 0
	strideIdx := 0
	for ss := startIdx; ss < endIdx; ss, strideIdx = ss+strideLen, strideIdx+1 {
		se := min(ss+strideLen, endIdx)
		if s.leafPopulated(ss, se) {
			continue
		}
		found := false
		var c int32
		for lt := uint32(0); lt < s.collisionTries; lt++ {
			var ok bool
			c, ok = s.descend(b, int(st.Arg2), tryno, lt, strideIdx)
			if !ok {
				break
			}
			if s.validCandidate(stepno, startIdx, endIdx, ss, se, c) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		if st.Arg2 == 0 { // leaf
			if strideLen != 1 || stepno+1 != s.end || c < 0 {
				continue
			}
			if s.p.isOut(c, s.x) {
				continue
			}
			s.pushUsed(stepno, ss, se, c)
			s.emit(ss, c)
			mapped++
		} else {
			if stepno+1 >= s.end || c >= 0 {
				continue
			}
			childMapped := s.choose(s.p.m.Buckets[-1-c], strideLen, ss, se, stepno+1, tryno)
			pushed := s.pushUsed(stepno, ss, se, c)
			if pushed && childMapped == 0 {
				undo[strideIdx] = c
			} else {
				mapped += childMapped
			}
		}
	}
	strideIdx = 0
	for ss := startIdx; ss < endIdx; ss, strideIdx = ss+strideLen, strideIdx+1 {
		if undo[strideIdx] != ItemUndef {
			s.popUsed(stepno, ss, min(ss+strideLen, endIdx))
		}
	}
	return mapped
}

// msrDoRule is crush_msr_do_rule.
func (p *mapper) msrDoRule(rule *Rule, x int32, result []int32) int {
	s := &msrState{
		p: p, rule: rule, x: x, resultMax: len(result), out: result,
		descents: p.m.MSRDescents, collisionTries: p.m.MSRCollisionTries,
		firstn: rule.Type == RuleMSRFirstN,
	}
	stepno := msrScanConfig(rule.Steps, &s.descents, &s.collisionTries)
	s.descents = clampTries(s.descents)
	s.collisionTries = clampTries(s.collisionTries)
	for i := range result {
		result[i] = ItemNone
	}
	startIdx := 0
	for stepno < len(rule.Steps) {
		total, emitStep, ok := msrScanNext(rule, s.resultMax, stepno)
		if !ok {
			return 0
		}
		take := rule.Steps[stepno]
		if take.Arg1 >= 0 {
			if stepno+1 != emitStep {
				return 0
			}
			s.emit(startIdx, take.Arg1)
			// Ceph does not advance here (and would loop); we move on.
			stepno = emitStep + 1
			startIdx++
			continue
		}
		root := p.m.Bucket(take.Arg1)
		if root == nil {
			return 0
		}
		stepno++
		s.start, s.end = stepno, emitStep
		n := s.end - s.start
		need := n * s.resultMax
		if cap(s.vecBacker) < need {
			s.vecBacker = make([]int32, need)
		}
		back := s.vecBacker[:need]
		for i := range back {
			back[i] = ItemUndef
		}
		s.vecs = s.vecs[:0]
		for i := 0; i < n; i++ {
			s.vecs = append(s.vecs, back[i*s.resultMax:(i+1)*s.resultMax])
		}
		endIdx := min(startIdx+total, s.resultMax)
		limit := s.returned + (endIdx - startIdx)
		for tries := uint32(0); tries < s.descents && s.returned < limit; tries++ {
			if n == 0 || startIdx >= endIdx {
				break
			}
			s.choose(root, total, startIdx, endIdx, stepno, tries)
		}
		startIdx = endIdx
		stepno = emitStep + 1
	}
	if s.firstn {
		return s.returned
	}
	return s.resultMax
}
