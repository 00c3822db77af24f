package msgr2

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"testing"
)

func testSecret() []byte {
	s := make([]byte, ConSecretLen)
	for i := range s {
		s[i] = byte(i*7 + 3)
	}
	return s
}

// securePair returns a client-side writer and a server-side reader for the
// same direction (client tx nonce = server rx nonce).
func securePair(t *testing.T) (*Writer, func([]byte) *Reader, []byte, Nonce) {
	t.Helper()
	key, _, tx, err := ClientSecret(testSecret())
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	if err := w.EnableSecure(key, tx); err != nil {
		t.Fatal(err)
	}
	mk := func(b []byte) *Reader {
		r := NewReader(bytes.NewReader(b), Limits{})
		if err := r.EnableSecure(key, tx); err != nil {
			t.Fatal(err)
		}
		return r
	}
	return w, mk, key, tx
}

func TestClientSecretLayout(t *testing.T) {
	s := testSecret()
	key, rx, tx, err := ClientSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, s[:16]) || !bytes.Equal(rx[:], s[16:28]) || !bytes.Equal(tx[:], s[28:40]) {
		t.Fatalf("key %x rx %x tx %x", key, rx, tx)
	}
	if _, _, _, err := ClientSecret(s[:39]); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("short secret: %v", err)
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13)
	}
	return b
}

// TestSecureRoundTrip sends frames of every interesting shape through a
// secure writer and reader and checks the GCM nonce sequence: one GCM
// operation for a control segment of up to 48 bytes, two above, and one
// more for the tail of a multi-segment frame.
func TestSecureRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		tag  Tag
		segs [][]byte
		ops  uint64
	}{
		{"empty wait", TagWait, [][]byte{nil}, 1},
		{"keepalive", TagKeepalive2, [][]byte{pattern(8, 1)}, 1},
		{"inline 48", TagAuthSignature, [][]byte{pattern(48, 2)}, 1},
		{"inline 49", TagClientIdent, [][]byte{pattern(49, 3)}, 2},
		{"big control", TagServerIdent, [][]byte{pattern(123, 4)}, 2},
		{"message front", TagMessage, [][]byte{pattern(41, 5), pattern(24, 6)}, 2},
		{"message data", TagMessage, [][]byte{pattern(41, 7), pattern(52, 8), nil, pattern(37, 9)}, 2},
		{"message big", TagMessage, [][]byte{pattern(41, 7), pattern(4096, 8), pattern(17, 1), pattern(1<<20+5, 9)}, 2},
	}
	w, mk, _, start := securePair(t)
	var stream bytes.Buffer
	for _, tc := range cases {
		bufs, err := w.Frame(tc.tag, tc.segs...)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bufs {
			stream.Write(b)
		}
	}
	if got, want := w.TxNonce().Counter()-start.Counter(), uint64(13); got != want {
		t.Errorf("writer used %d GCM ops, want %d", got, want)
	}
	r := mk(stream.Bytes())
	for _, tc := range cases {
		before := r.RxNonce().Counter()
		var f Frame
		if err := r.ReadFrame(&f); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Tag() != tc.tag {
			t.Fatalf("%s: tag %s", tc.name, f.Tag())
		}
		for i, s := range tc.segs {
			if !bytes.Equal(f.Segments[i], s) {
				t.Fatalf("%s: segment %d differs (%d vs %d bytes)", tc.name, i, len(f.Segments[i]), len(s))
			}
		}
		if ops := r.RxNonce().Counter() - before; ops != tc.ops {
			t.Errorf("%s: %d GCM ops, want %d", tc.name, ops, tc.ops)
		}
	}
}

// TestSecureLayout decrypts a secure frame by hand with crypto/cipher,
// following the msgr2.1 layout independently of Reader: 96 bytes sealing
// preamble + 48 inline bytes with nonce n, the padded remainder of segment
// 0 with nonce n+1, then segments 1..3 each padded to 16 bytes plus a
// 16-byte epilogue block with nonce n+2.
func TestSecureLayout(t *testing.T) {
	w, _, key, n0 := securePair(t)
	seg0, front, data := pattern(60, 1), pattern(20, 2), pattern(5, 3)
	bufs, err := w.Frame(TagMessage, seg0, front, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	wire := bytes.Join(bufs, nil)
	blk, _ := aes.NewCipher(key)
	g, _ := cipher.NewGCM(blk)
	nonce := func(k uint64) []byte {
		n := n0
		binary.LittleEndian.PutUint64(n[4:], n0.Counter()+k)
		return n[:]
	}
	wantLen := 96 + (16 + 16) + (32 + 0 + 16 + 16 + 16)
	if len(wire) != wantLen {
		t.Fatalf("frame is %d bytes, want %d", len(wire), wantLen)
	}
	head, err := g.Open(nil, nonce(0), wire[:96], nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := DecodePreamble(head[:32], Limits{})
	if err != nil || p.NumSegments != 4 || p.Len(0) != 60 || p.Len(1) != 20 || p.Len(2) != 0 || p.Len(3) != 5 {
		t.Fatalf("preamble %+v %v", p, err)
	}
	if p.Segments[2].Align != 8 || p.Segments[3].Align != 4096 {
		t.Errorf("aligns %+v", p.Segments)
	}
	if !bytes.Equal(head[32:80], seg0[:48]) {
		t.Error("inline part differs")
	}
	rem, err := g.Open(nil, nonce(1), wire[96:96+32], nil)
	if err != nil || !bytes.Equal(rem[:12], seg0[48:]) || !bytes.Equal(rem[12:], make([]byte, 4)) {
		t.Fatalf("remainder %x %v", rem, err)
	}
	tail, err := g.Open(nil, nonce(2), wire[128:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tail[:20], front) || !bytes.Equal(tail[20:32], make([]byte, 12)) ||
		!bytes.Equal(tail[32:37], data) || !bytes.Equal(tail[37:48], make([]byte, 11)) {
		t.Errorf("tail layout %x", tail)
	}
	if tail[48] != LateStatusComplete || !bytes.Equal(tail[49:64], make([]byte, 15)) {
		t.Errorf("epilogue block %x", tail[48:])
	}
}

func TestSecureTamper(t *testing.T) {
	w, mk, _, _ := securePair(t)
	bufs, _ := w.Frame(TagMessage, pattern(41, 1), pattern(100, 2))
	wire := bytes.Join(bufs, nil)
	for _, off := range []int{0, 40, 95, 96, len(wire) - 1} {
		bad := bytes.Clone(wire)
		bad[off] ^= 0x80
		var f Frame
		if err := mk(bad).ReadFrame(&f); !errors.Is(err, ErrAuthTag) {
			t.Errorf("flip at %d: %v", off, err)
		}
	}
	// the wrong nonce (a replayed or reordered frame) fails too
	r := mk(append(bytes.Clone(wire), wire...))
	var f Frame
	if err := r.ReadFrame(&f); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFrame(&f); !errors.Is(err, ErrAuthTag) {
		t.Errorf("replayed frame: %v", err)
	}
}

// TestAppendBatch assembles several frames into one buffer list (one
// writev) and reads them back in both modes.
func TestAppendBatch(t *testing.T) {
	for _, secure := range []bool{false, true} {
		key, _, tx, _ := ClientSecret(testSecret())
		w := NewWriter()
		if secure {
			w.EnableSecure(key, tx)
		}
		var bufs [][]byte
		var err error
		for i := 0; i < 5; i++ {
			bufs, err = w.Append(bufs, TagMessage, pattern(41, byte(i)), pattern(100+i, byte(i)), nil, pattern(4000*i, byte(i)))
			if err != nil {
				t.Fatal(err)
			}
		}
		r := NewReader(bytes.NewReader(bytes.Join(bufs, nil)), Limits{})
		if secure {
			r.EnableSecure(key, tx)
		}
		for i := 0; i < 5; i++ {
			var f Frame
			if err := r.ReadFrame(&f); err != nil {
				t.Fatalf("secure=%v frame %d: %v", secure, i, err)
			}
			if !bytes.Equal(f.Segments[0], pattern(41, byte(i))) || !bytes.Equal(f.Segments[1], pattern(100+i, byte(i))) ||
				!bytes.Equal(f.Segments[3], pattern(4000*i, byte(i))) {
				t.Fatalf("secure=%v frame %d differs", secure, i)
			}
		}
		w.Reset()
	}
}
