package msgr2

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Frame is one received frame.
type Frame struct {
	Preamble Preamble
	// Segments holds the segment payloads. Segments[0] (the control
	// payload or message header) aliases the Reader's buffer and is valid
	// only until the next ReadFrame; Segments[1..3] are freshly allocated
	// and may be kept, except a data segment received into a buffer from
	// the Reader's DataBuffer function, which aliases that buffer.
	Segments [MaxSegments][]byte
	// Aborted is set when the sender aborted the frame (late status);
	// such a frame must be dropped.
	Aborted bool
}

// Tag returns the frame's tag.
func (f *Frame) Tag() Tag { return f.Preamble.Tag }

// Reader disassembles frames read from an io.Reader, in crc mode or, after
// EnableSecure, in secure mode. It is not safe for concurrent use.
type Reader struct {
	r    io.Reader
	lim  Limits
	sec  *gcm
	hdr  [SecurePreambleLen]byte
	ctrl []byte
	epi  [EpilogueCRCLen]byte

	dataBuf DataBufferFunc
}

// DataBufferFunc picks where the data segment (segment 3) of a crc-mode
// frame is received, once the preamble and segment 0 (seg0, which Reader
// has checked) are known: it returns a buffer of exactly n bytes, or nil
// for a fresh allocation. release, if not nil, is called once the Reader
// no longer writes into buf: after the frame was read, or failed to read.
// It is how a client receives a large read reply straight into the
// caller's memory instead of allocating, zeroing and copying it.
type DataBufferFunc func(p *Preamble, seg0 []byte, n int) (buf []byte, release func())

// NewReader returns a crc-mode frame reader that bounds segment lengths by
// lim (zero fields take the defaults).
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{r: r, lim: lim.withDefaults()}
}

// EnableSecure switches to secure mode with the AES-128 key and the nonce
// of the first frame we receive (see ClientSecret).
func (r *Reader) EnableSecure(key []byte, nonce Nonce) error {
	g, err := newGCM(key, nonce)
	if err != nil {
		return err
	}
	r.sec = g
	return nil
}

// SetDataBuffer installs fn to choose the buffer of each crc-mode frame's
// data segment (nil: always allocate). Secure mode always allocates: its
// segments are decrypted as one piece.
func (r *Reader) SetDataBuffer(fn DataBufferFunc) { r.dataBuf = fn }

// Secure reports whether the reader is in secure mode.
func (r *Reader) Secure() bool { return r.sec != nil }

// RxNonce returns the nonce the next GCM operation will use (secure mode).
func (r *Reader) RxNonce() Nonce {
	if r.sec == nil {
		return Nonce{}
	}
	return r.sec.nonce
}

// ReadFrame reads and verifies the next frame into f.
func (r *Reader) ReadFrame(f *Frame) error {
	*f = Frame{}
	if r.sec != nil {
		return r.readSecure(f)
	}
	return r.readCRC(f)
}

func (r *Reader) readCRC(f *Frame) error {
	if _, err := io.ReadFull(r.r, r.hdr[:PreambleLen]); err != nil {
		return err
	}
	p, err := DecodePreamble(r.hdr[:PreambleLen], r.lim)
	if err != nil {
		return err
	}
	f.Preamble = p
	if n := p.Len(0); n > 0 {
		r.ctrl = grow(r.ctrl, n+CRCLen)
		if _, err := io.ReadFull(r.r, r.ctrl); err != nil {
			return eof(err)
		}
		want := binary.LittleEndian.Uint32(r.ctrl[n:])
		if got := segCRC(r.ctrl[:n]); got != want {
			return fmt.Errorf("%w: %s segment 0 crc %#08x, expected %#08x", ErrBadCRC, p.Tag, got, want)
		}
		f.Segments[0] = r.ctrl[:n:n]
	}
	if p.NumSegments == 1 {
		return nil
	}
	var data []byte // the data segment, when it has a buffer of its own
	if n := p.Len(3); n > 0 && r.dataBuf != nil {
		b, release := r.dataBuf(&p, f.Segments[0], n)
		if release != nil {
			defer release()
		}
		if len(b) == n {
			data = b
		}
	}
	total := p.Len(1) + p.Len(2)
	if data == nil {
		total += p.Len(3)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return eof(err)
	}
	if data != nil {
		if _, err := io.ReadFull(r.r, data); err != nil {
			return eof(err)
		}
	}
	if _, err := io.ReadFull(r.r, r.epi[:]); err != nil {
		return eof(err)
	}
	off := 0
	for i := 1; i < MaxSegments; i++ {
		n := p.Len(i)
		var seg []byte
		if i == 3 && data != nil {
			seg = data[:n:n]
		} else {
			seg = buf[off : off+n : off+n]
			off += n
		}
		want := binary.LittleEndian.Uint32(r.epi[1+4*(i-1):])
		var got uint32
		if i < p.NumSegments {
			got = segCRC(seg)
			f.Segments[i] = seg
		}
		if got != want {
			return fmt.Errorf("%w: %s segment %d crc %#08x, expected %#08x", ErrBadCRC, p.Tag, i, got, want)
		}
	}
	return lateStatus(r.epi[0], f)
}

func (r *Reader) readSecure(f *Frame) error {
	h := r.hdr[:]
	if _, err := io.ReadFull(r.r, h); err != nil {
		return err
	}
	pt, err := r.sec.open(h)
	if err != nil {
		return fmt.Errorf("%w (preamble)", err)
	}
	p, err := DecodePreamble(pt[:PreambleLen], r.lim)
	if err != nil {
		return err
	}
	f.Preamble = p
	n0 := p.Len(0)
	if n0 <= InlineLen {
		f.Segments[0] = pt[PreambleLen : PreambleLen+n0 : PreambleLen+n0]
	} else {
		rem := padded(n0 - InlineLen)
		r.ctrl = grow(r.ctrl, InlineLen+rem+GCMTagLen)
		copy(r.ctrl, pt[PreambleLen:PreambleLen+InlineLen])
		if _, err := io.ReadFull(r.r, r.ctrl[InlineLen:]); err != nil {
			return eof(err)
		}
		if _, err := r.sec.open(r.ctrl[InlineLen:]); err != nil {
			return fmt.Errorf("%w (segment 0 remainder)", err)
		}
		f.Segments[0] = r.ctrl[:n0:n0]
	}
	if p.NumSegments == 1 {
		return nil
	}
	tl := EpilogueSecureLen
	for i := 1; i < p.NumSegments; i++ {
		tl += padded(p.Len(i))
	}
	buf := make([]byte, tl)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return eof(err)
	}
	if _, err := r.sec.open(buf); err != nil {
		return fmt.Errorf("%w (%s tail)", err, p.Tag)
	}
	off := 0
	for i := 1; i < p.NumSegments; i++ {
		n := p.Len(i)
		f.Segments[i] = buf[off : off+n : off+n]
		off += padded(n)
	}
	return lateStatus(buf[off], f)
}

func lateStatus(s byte, f *Frame) error {
	switch s & lateStatusMask {
	case LateStatusComplete:
		return nil
	case LateStatusAborted:
		f.Aborted = true
		return nil
	}
	return fmt.Errorf("%w: late status %#x", ErrBadEpilogue, s)
}

// eof turns a clean EOF in the middle of a frame into ErrUnexpectedEOF.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
