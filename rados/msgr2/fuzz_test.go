package msgr2

import (
	"bytes"
	"os"
	"testing"
)

// Seeds come from the captured real exchange (testdata/noauth_*.bin) plus
// hand-made edge cases; every decoder must survive arbitrary input without
// panicking, and whatever decodes must re-encode stably.

func captured(tb testing.TB) (streams [][]byte, segs map[Tag][][]byte) {
	tb.Helper()
	segs = map[Tag][][]byte{}
	for _, name := range []string{"noauth_server.bin", "noauth_client.bin"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			tb.Fatal(err)
		}
		streams = append(streams, b)
		r := bytes.NewReader(b[BannerLen:])
		rd := NewReader(r, Limits{})
		for r.Len() > 0 {
			var f Frame
			if err := rd.ReadFrame(&f); err != nil {
				tb.Fatal(err)
			}
			segs[f.Tag()] = append(segs[f.Tag()], bytes.Clone(f.Segments[0]))
		}
	}
	return streams, segs
}

type payload interface {
	Encode([]byte) []byte
	Decode([]byte) error
}

// fuzzPayload checks decode → encode → decode → encode stability.
func fuzzPayload[T any, P interface {
	*T
	payload
}](f *testing.F, tag Tag, extra ...[]byte) {
	_, segs := captured(f)
	for _, s := range segs[tag] {
		f.Add(s)
	}
	for _, s := range extra {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v T
		if P(&v).Decode(b) != nil {
			return
		}
		enc := P(&v).Encode(nil)
		var v2 T
		if err := P(&v2).Decode(enc); err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if enc2 := P(&v2).Encode(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable encoding:\n%x\n%x", enc, enc2)
		}
	})
}

func FuzzHello(f *testing.F) { fuzzPayload[Hello](f, TagHello) }
func FuzzAuthRequest(f *testing.F) {
	fuzzPayload[AuthRequest](f, TagAuthRequest, (&AuthRequest{Method: 2, PreferredModes: []uint32{2, 1}, Payload: []byte{1}}).Encode(nil))
}
func FuzzAuthBadMethod(f *testing.F) {
	fuzzPayload[AuthBadMethod](f, TagAuthBadMethod, (&AuthBadMethod{Method: 1, Result: -95, AllowedMethods: []uint32{2}, AllowedModes: []uint32{2, 1}}).Encode(nil))
}
func FuzzAuthReplyMore(f *testing.F) {
	fuzzPayload[AuthReplyMore](f, TagAuthReplyMore, (&AuthReplyMore{Payload: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}}).Encode(nil))
}
func FuzzAuthRequestMore(f *testing.F) {
	fuzzPayload[AuthRequestMore](f, TagAuthRequestMore, (&AuthRequestMore{Payload: []byte("x")}).Encode(nil))
}
func FuzzAuthDone(f *testing.F)      { fuzzPayload[AuthDone](f, TagAuthDone) }
func FuzzAuthSignature(f *testing.F) { fuzzPayload[AuthSignature](f, TagAuthSignature) }
func FuzzClientIdent(f *testing.F)   { fuzzPayload[ClientIdent](f, TagClientIdent) }
func FuzzServerIdent(f *testing.F)   { fuzzPayload[ServerIdent](f, TagServerIdent) }
func FuzzIdentMissingFeatures(f *testing.F) {
	fuzzPayload[IdentMissingFeatures](f, TagIdentMissingFeatures, (&IdentMissingFeatures{Missing: 1 << 59}).Encode(nil))
}
func FuzzSessionReconnect(f *testing.F) {
	_, segs := captured(f)
	fuzzPayload[SessionReconnect](f, TagSessionReconnect, segs[TagClientIdent]...)
}
func FuzzSessionReset(f *testing.F) { fuzzPayload[SessionReset](f, TagSessionReset, []byte{1}) }
func FuzzSessionRetry(f *testing.F) {
	fuzzPayload[SessionRetry](f, TagSessionRetry, (&SessionRetry{ConnectSeq: 3}).Encode(nil))
}
func FuzzSessionRetryGlobal(f *testing.F) {
	fuzzPayload[SessionRetryGlobal](f, TagSessionRetryGlobal, (&SessionRetryGlobal{GlobalSeq: 9}).Encode(nil))
}
func FuzzSessionReconnectOK(f *testing.F) {
	fuzzPayload[SessionReconnectOK](f, TagSessionReconnectOK, (&SessionReconnectOK{MsgSeq: 4}).Encode(nil))
}
func FuzzKeepalive2(f *testing.F) { fuzzPayload[Keepalive2](f, TagKeepalive2Ack) }
func FuzzAck(f *testing.F)        { fuzzPayload[Ack](f, TagAck) }
func FuzzMessageHeader(f *testing.F) {
	fuzzPayload[MessageHeader](f, TagMessage)
}

func FuzzSessionFrame(f *testing.F) {
	f.Add(uint8(TagSessionReset), []byte{1})
	f.Add(uint8(TagSessionRetry), []byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(TagHello), []byte{})
	f.Fuzz(func(t *testing.T, tag uint8, b []byte) {
		_ = DecodeSessionFrame(Tag(tag), b)
	})
}

func FuzzBanner(f *testing.F) {
	streams, _ := captured(f)
	for _, s := range streams {
		f.Add(s[:BannerLen])
	}
	f.Add([]byte("ceph v027\x00\x00\x00"))
	f.Add([]byte("ceph v2\n\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bn, raw, err := ReadBanner(bytes.NewReader(b))
		if len(raw) > len(b) {
			t.Fatalf("raw %d > input %d", len(raw), len(b))
		}
		if err == nil {
			if !bytes.Equal(raw, b[:len(raw)]) {
				t.Fatal("raw bytes differ from input")
			}
			_ = bn.Check(Banner{Supported: SupportedFeatures, Required: RequiredFeatures})
		}
	})
}

func FuzzPreamble(f *testing.F) {
	streams, _ := captured(f)
	for _, s := range streams {
		f.Add(s[BannerLen : BannerLen+PreambleLen])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePreamble(b, Limits{})
		if err != nil {
			return
		}
		var out [PreambleLen]byte
		p.Encode(out[:])
		p2, err := DecodePreamble(out[:], Limits{})
		if err != nil || p2 != p {
			t.Fatalf("re-decode %+v %v, want %+v", p2, err, p)
		}
	})
}

// FuzzReadFrameCRC feeds arbitrary bytes to a crc-mode reader; any frame
// it accepts must survive Writer → Reader unchanged.
func FuzzReadFrameCRC(f *testing.F) {
	streams, _ := captured(f)
	for _, s := range streams {
		f.Add(s[BannerLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := Limits{Control: 1 << 16, Front: 1 << 16, Middle: 1 << 16, Data: 1 << 16}
		rd := NewReader(bytes.NewReader(b), lim)
		w := NewWriter()
		for i := 0; i < 8; i++ {
			var f Frame
			if err := rd.ReadFrame(&f); err != nil {
				return
			}
			n := f.Preamble.NumSegments
			bufs, err := w.Frame(f.Tag(), f.Segments[:n]...)
			if err != nil {
				t.Fatal(err)
			}
			var g Frame
			if err := NewReader(bytes.NewReader(bytes.Join(bufs, nil)), lim).ReadFrame(&g); err != nil {
				t.Fatalf("re-read: %v", err)
			}
			for j := 0; j < MaxSegments; j++ {
				if !bytes.Equal(f.Segments[j], g.Segments[j]) {
					t.Fatalf("segment %d differs", j)
				}
			}
		}
	})
}

// FuzzReadFrameSecure round-trips fuzzer-chosen segments through secure
// mode, optionally corrupting one byte, and also feeds the raw input to a
// secure reader.
func FuzzReadFrameSecure(f *testing.F) {
	_, segs := captured(f)
	f.Add(uint8(TagMessage), segs[TagMessage][0], []byte("front"), []byte{}, []byte("data"), uint32(0), false)
	f.Add(uint8(TagServerIdent), segs[TagServerIdent][0], []byte{}, []byte{}, []byte{}, uint32(100), true)
	f.Add(uint8(TagWait), []byte{}, []byte{}, []byte{}, []byte{}, uint32(3), true)
	key, _, tx, _ := ClientSecret(testSecret())
	f.Fuzz(func(t *testing.T, tag uint8, s0, s1, s2, s3 []byte, flip uint32, corrupt bool) {
		w := NewWriter()
		w.EnableSecure(key, tx)
		bufs, err := w.Frame(Tag(tag), s0, s1, s2, s3)
		if err != nil {
			t.Fatal(err)
		}
		wire := bytes.Join(bufs, nil)
		if corrupt {
			wire[int(flip)%len(wire)] ^= 1
		}
		for i, in := range [][]byte{wire, s0} {
			r := NewReader(bytes.NewReader(in), Limits{})
			r.EnableSecure(key, tx)
			var g Frame
			err := r.ReadFrame(&g)
			if corrupt || i == 1 {
				continue // must not panic; may fail
			}
			if err != nil {
				t.Fatalf("clean frame: %v", err)
			}
			for j, s := range [][]byte{s0, s1, s2, s3} {
				if !bytes.Equal(g.Segments[j], s) {
					t.Fatalf("segment %d differs", j)
				}
			}
		}
	})
}

// FuzzReadCapturedSecure feeds bytes to a secure reader keyed like the
// captured pacific-secure session; seeds are the mon's real secure frames.
func FuzzReadCapturedSecure(f *testing.F) {
	_, secret := secureKeys(f)
	key, rx, _, _ := ClientSecret(secret)
	b, err := os.ReadFile("testdata/secure_server.bin")
	if err != nil {
		f.Fatal(err)
	}
	// skip the banner and the three crc frames before secure mode
	r := bytes.NewReader(b[BannerLen:])
	rd := NewReader(r, Limits{})
	for i := 0; i < 3; i++ {
		var fr Frame
		if err := rd.ReadFrame(&fr); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(b[len(b)-r.Len():])
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := NewReader(bytes.NewReader(in), Limits{Data: 1 << 20})
		rd.EnableSecure(key, rx)
		for i := 0; i < 4; i++ {
			var fr Frame
			if rd.ReadFrame(&fr) != nil {
				return
			}
		}
	})
}
