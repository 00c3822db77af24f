package msgr2

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// Writer assembles outgoing frames in crc mode, or in secure mode after
// EnableSecure. It reuses its buffers: the slices returned by Frame are
// valid until the next Frame or Reset call; those appended by Append stay
// valid until Reset, so several frames can go out in one writev. A Writer
// is not safe for concurrent use.
type Writer struct {
	sec   *gcm
	slots []*slot // per-frame buffers since the last Reset
	n     int     // slots in use
	bufs  [2 + MaxSegments][]byte

	deferCRC bool
	jobs     []crcJob // deferred segment crcs since the last Reset, in order
	group    [][]byte // scratch for Emit
}

// crcJob is a segment whose crc Emit computes while writing it.
type crcJob struct {
	seg []byte
	dst []byte // its 4 bytes in the frame's epilogue
}

// slot holds the assembled head, secure tail and epilogue of one frame.
type slot struct {
	head []byte
	tail []byte
	epi  [EpilogueCRCLen]byte
}

// Reset makes the buffers of earlier frames reusable.
func (w *Writer) Reset() {
	w.n = 0
	clear(w.jobs) // drop the references to callers' segments
	w.jobs = w.jobs[:0]
}

func (w *Writer) slot() *slot {
	if w.n == len(w.slots) {
		w.slots = append(w.slots, &slot{})
	}
	s := w.slots[w.n]
	w.n++
	return s
}

// NewWriter returns a crc-mode frame writer.
func NewWriter() *Writer { return &Writer{} }

// EnableSecure switches to secure mode with the AES-128 key and the nonce
// of the first frame we send (see ClientSecret).
func (w *Writer) EnableSecure(key []byte, nonce Nonce) error {
	g, err := newGCM(key, nonce)
	if err != nil {
		return err
	}
	w.sec = g
	return nil
}

// Secure reports whether the writer is in secure mode.
func (w *Writer) Secure() bool { return w.sec != nil }

// TxNonce returns the nonce the next GCM operation will use (secure mode).
func (w *Writer) TxNonce() Nonce {
	if w.sec == nil {
		return Nonce{}
	}
	return w.sec.nonce
}

// maxTailKeep is the largest tail buffer kept between frames.
const maxTailKeep = 1 << 20

// Frame assembles a frame of up to four segments and returns the buffers to
// write, in order. Segments 1..3 are referenced, not copied, in crc mode.
// It resets the writer first.
func (w *Writer) Frame(tag Tag, segs ...[]byte) ([][]byte, error) {
	w.Reset()
	return w.Append(w.bufs[:0], tag, segs...)
}

// Append assembles a frame like Frame and appends its buffers to dst. The
// buffers stay valid until Reset (or Frame).
func (w *Writer) Append(dst [][]byte, tag Tag, segs ...[]byte) ([][]byte, error) {
	if len(segs) > MaxSegments {
		return nil, fmt.Errorf("msgr2: %d segments", len(segs))
	}
	var lens [MaxSegments]int
	for i, s := range segs {
		if uint64(len(s)) > 1<<31 {
			return nil, fmt.Errorf("%w: segment %d of %d bytes", ErrTooLarge, i, len(s))
		}
		lens[i] = len(s)
	}
	var seg0 []byte
	if len(segs) > 0 {
		seg0 = segs[0]
	}
	p := newPreamble(tag, lens)
	if w.sec != nil {
		return w.frameSecure(dst, w.slot(), &p, seg0, segs), nil
	}
	return w.frameCRC(dst, w.slot(), &p, seg0, segs), nil
}

func (w *Writer) frameCRC(out [][]byte, sl *slot, p *Preamble, seg0 []byte, segs [][]byte) [][]byte {
	n := PreambleLen + len(seg0)
	if len(seg0) > 0 {
		n += CRCLen
	}
	sl.head = grow(sl.head, n)
	p.Encode(sl.head)
	copy(sl.head[PreambleLen:], seg0)
	if len(seg0) > 0 {
		binary.LittleEndian.PutUint32(sl.head[PreambleLen+len(seg0):], segCRC(seg0))
	}
	out = append(out, sl.head)
	if p.NumSegments == 1 {
		return out
	}
	sl.epi[0] = LateStatusComplete
	for i := 1; i < MaxSegments; i++ {
		var crc uint32
		dst := sl.epi[1+4*(i-1) : 1+4*i]
		if i < p.NumSegments {
			if w.deferCRC && len(segs[i]) >= DeferCRCMin {
				w.jobs = append(w.jobs, crcJob{seg: segs[i], dst: dst})
				out = append(out, segs[i])
				continue
			}
			crc = segCRC(segs[i])
			if len(segs[i]) > 0 {
				out = append(out, segs[i])
			}
		}
		binary.LittleEndian.PutUint32(dst, crc)
	}
	return append(out, sl.epi[:])
}

func (w *Writer) frameSecure(out [][]byte, sl *slot, p *Preamble, seg0 []byte, segs [][]byte) [][]byte {
	n := SecurePreambleLen
	rem := 0
	if len(seg0) > InlineLen {
		rem = padded(len(seg0) - InlineLen)
		n += rem + GCMTagLen
	}
	sl.head = grow(sl.head, n)
	h := sl.head
	p.Encode(h)
	inl := h[PreambleLen : PreambleLen+InlineLen]
	c := copy(inl, seg0)
	clear(inl[c:])
	w.sec.seal(h[:SecurePreambleLen], PreambleLen+InlineLen)
	if rem > 0 {
		r := h[SecurePreambleLen:]
		c := copy(r, seg0[InlineLen:])
		clear(r[c:rem])
		w.sec.seal(r[:rem+GCMTagLen], rem)
	}
	out = append(out, h)
	if p.NumSegments == 1 {
		return out
	}
	tl := EpilogueSecureLen
	for i := 1; i < p.NumSegments; i++ {
		tl += padded(len(segs[i]))
	}
	if cap(sl.tail) > maxTailKeep && tl <= maxTailKeep {
		sl.tail = nil
	}
	sl.tail = grow(sl.tail, tl)
	t := sl.tail
	off := 0
	for i := 1; i < p.NumSegments; i++ {
		c := copy(t[off:], segs[i])
		pl := padded(c)
		clear(t[off+c : off+pl])
		off += pl
	}
	clear(t[off : off+GCMBlockLen])
	t[off] = LateStatusComplete
	w.sec.seal(t, tl-GCMTagLen)
	return append(out, t)
}

// grow returns b resized to n bytes, reallocating only when needed.
func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, n+n/4)
	}
	return b[:n]
}

// DeferCRCMin is the smallest segment whose crc a Writer with SetDeferCRC
// computes in Emit rather than in Frame/Append.
const DeferCRCMin = 256 << 10

// crcChunk is how much of a deferred segment Emit hands to write at once.
const crcChunk = 256 << 10

// SetDeferCRC makes crc-mode frames leave the crcs of segments of at least
// DeferCRCMin bytes out of their epilogues until [Writer.Emit] writes
// them: Emit hands such a segment to the writer in chunks and computes its
// crc over each chunk after it was handed over, so the peer receives
// (and checks) the first bytes while the rest is still being summed,
// instead of waiting for a crc32c pass over the whole payload (about 0.5
// ms for 4 MiB). With it on, buffers from Frame and Append must be written
// with Emit. It has no effect in secure mode.
func (w *Writer) SetDeferCRC(on bool) { w.deferCRC = on }

// Emit passes bufs (from Frame or Append since the last Reset) to write in
// order, in one or more calls, filling in deferred crcs on the way (see
// SetDeferCRC); without deferred crcs it calls write once with bufs. write
// must consume the buffers before it returns; its first error is
// returned.
func (w *Writer) Emit(bufs [][]byte, write func([][]byte) error) error {
	if len(w.jobs) == 0 {
		return write(bufs)
	}
	g := w.group[:0]
	j := 0
	for _, b := range bufs {
		if j >= len(w.jobs) || !sameSlice(b, w.jobs[j].seg) {
			g = append(g, b)
			continue
		}
		crc := uint32(0xffffffff)
		for len(b) > crcChunk {
			c := b[:crcChunk]
			g = append(g, c)
			if err := write(g); err != nil {
				return err
			}
			g = g[:0]
			crc = encoding.CRC32C(crc, c)
			b = b[crcChunk:]
		}
		// The last chunk goes out with what follows (at least the
		// epilogue), so its crc comes first.
		crc = encoding.CRC32C(crc, b)
		binary.LittleEndian.PutUint32(w.jobs[j].dst, crc)
		g = append(g, b)
		j++
	}
	w.group = g[:0]
	if j != len(w.jobs) {
		return errors.New("msgr2: Emit: buffers do not match the frames appended")
	}
	return write(g)
}

// sameSlice reports whether a and b are the same bytes of the same array.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}
