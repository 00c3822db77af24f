package msgr2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// The testdata/noauth_*.bin files are a real crc-mode exchange between our
// messenger and the Pacific 16.2.15 mon of the noauth cluster (auth none),
// captured by messenger's TestCaptureNoauth with GORBD_CAPTURE=1:
// banner, HELLO, AUTH_REQUEST/AUTH_DONE, AUTH_SIGNATURE (zeros: no session
// key), CLIENT_IDENT/SERVER_IDENT, MMonGetVersion → MMonGetVersionReply,
// MMonCommand {"prefix": "fsid"} → MMonCommandAck (with a data segment),
// ACKs and a KEEPALIVE2 → KEEPALIVE2_ACK.

type capturedFrame struct {
	off int    // offset in the stream
	raw []byte // on-wire bytes
	f   Frame
}

func readCapture(t *testing.T, name string) (Banner, []byte, []capturedFrame) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	bn, raw, err := ReadBanner(r)
	if err != nil {
		t.Fatalf("%s banner: %v", name, err)
	}
	rd := NewReader(r, Limits{})
	var out []capturedFrame
	for r.Len() > 0 {
		off := len(b) - r.Len()
		var f Frame
		if err := rd.ReadFrame(&f); err != nil {
			t.Fatalf("%s frame at %d: %v", name, off, err)
		}
		// keep segment 0: it aliases the reader's buffer
		f.Segments[0] = bytes.Clone(f.Segments[0])
		out = append(out, capturedFrame{off: off, raw: b[off : len(b)-r.Len()], f: f})
	}
	return bn, raw, out
}

func tags(fs []capturedFrame) []Tag {
	var ts []Tag
	for _, f := range fs {
		ts = append(ts, f.f.Tag())
	}
	return ts
}

func TestCapturedServerStream(t *testing.T) {
	bn, raw, fs := readCapture(t, "noauth_server.bin")
	// Pacific advertises rev1 and requires nothing.
	if bn != (Banner{Supported: FeatureRevision1, Required: 0}) {
		t.Errorf("banner %+v", bn)
	}
	if !bytes.Equal(raw, []byte("ceph v2\n\x10\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")) {
		t.Errorf("banner bytes %x", raw)
	}
	if err := bn.Check(Banner{Supported: SupportedFeatures, Required: RequiredFeatures}); err != nil {
		t.Error(err)
	}
	want := []Tag{TagHello, TagAuthDone, TagAuthSignature, TagServerIdent, TagMessage, TagMessage, TagKeepalive2Ack}
	if got := tags(fs); !equalTags(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}

	var hello Hello
	if err := hello.Decode(fs[0].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	if hello.EntityType != entity.TypeMon || hello.PeerAddr.Type != entity.AddrMsgr2 || !hello.PeerAddr.IP.Addr().IsLoopback() {
		t.Errorf("hello %+v", hello)
	}

	var done AuthDone
	if err := done.Decode(fs[1].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	if done.ConMode != ModeCRC || done.GlobalID == 0 || len(done.Payload) != 0 {
		t.Errorf("auth done %+v", done)
	}

	var sig AuthSignature
	if err := sig.Decode(fs[2].f.Segments[0]); err != nil || sig.HMAC != [32]byte{} {
		t.Errorf("auth signature %x %v (auth none signs with zeros)", sig.HMAC, err)
	}

	var si ServerIdent
	if err := si.Decode(fs[3].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	v2, ok := si.Addrs.Msgr2()
	if !ok || v2.Nonce != 0 || !si.Lossy() || si.Cookie != 0 || si.SupportedFeatures == 0 {
		t.Errorf("server ident %+v", si)
	}

	var h MessageHeader
	if err := h.Decode(fs[4].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	if h.Seq != 1 || h.Type != 20 || h.Tid != 1 || h.AckSeq != 1 || len(fs[4].f.Segments[1]) != 24 {
		t.Errorf("get_version reply header %+v", h)
	}
	if err := h.Decode(fs[5].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	data := fs[5].f.Segments[3]
	if h.Seq != 2 || h.Type != 51 || h.Tid != 2 || len(data) != 37 || data[36] != '\n' {
		t.Errorf("command ack header %+v data %q", h, data)
	}
	// The command ack uses all four segments with an empty middle: its
	// epilogue carries crc -1 for the used-but-empty middle.
	epi := fs[5].raw[len(fs[5].raw)-EpilogueCRCLen:]
	if epi[0] != LateStatusComplete || binary.LittleEndian.Uint32(epi[5:]) != 0xffffffff {
		t.Errorf("epilogue %x", epi)
	}
	var ka Keepalive2Ack
	if err := ka.Decode(fs[6].f.Segments[0]); err != nil || ka.Stamp.Unix() != 1700000000 {
		t.Errorf("keepalive ack %v %v", ka.Stamp, err)
	}
}

func TestCapturedClientStream(t *testing.T) {
	bn, _, fs := readCapture(t, "noauth_client.bin")
	if bn != (Banner{Supported: SupportedFeatures, Required: RequiredFeatures}) {
		t.Errorf("banner %+v", bn)
	}
	want := []Tag{TagHello, TagAuthRequest, TagAuthSignature, TagClientIdent, TagMessage, TagAck, TagMessage, TagAck, TagKeepalive2}
	if got := tags(fs); !equalTags(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	var ar AuthRequest
	if err := ar.Decode(fs[1].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	if ar.Method != AuthNone || len(ar.PreferredModes) != 1 || ar.PreferredModes[0] != ModeCRC || ar.Payload[0] != 10 {
		t.Errorf("auth request %+v", ar)
	}
	var ci ClientIdent
	if err := ci.Decode(fs[3].f.Segments[0]); err != nil {
		t.Fatal(err)
	}
	if len(ci.Addrs) != 1 || ci.Addrs[0].Type != entity.AddrAny || ci.Addrs[0].Nonce == 0 || ci.Cookie == 0 || ci.Flags != FlagLossy {
		t.Errorf("client ident %+v", ci)
	}
}

// TestCapturedReassemble re-encodes every captured frame with Writer and
// requires the exact bytes Ceph (or we) put on the wire: preamble with
// crc, aligns, segment 0 crc, epilogue.
func TestCapturedReassemble(t *testing.T) {
	for _, name := range []string{"noauth_server.bin", "noauth_client.bin"} {
		_, _, fs := readCapture(t, name)
		w := NewWriter()
		for _, cf := range fs {
			n := cf.f.Preamble.NumSegments
			bufs, err := w.Frame(cf.f.Tag(), cf.f.Segments[:n]...)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Join(bufs, nil); !bytes.Equal(got, cf.raw) {
				t.Errorf("%s %s at %d:\n got %x\nwant %x", name, cf.f.Tag(), cf.off, got, cf.raw)
			}
		}
	}
}

func TestCapturedPreambleCRC(t *testing.T) {
	_, _, fs := readCapture(t, "noauth_server.bin")
	pre := bytes.Clone(fs[0].raw[:PreambleLen])
	// HELLO preamble: tag 1, one segment of 36 bytes aligned to 8, crc.
	want := Preamble{Tag: TagHello, NumSegments: 1, Segments: [4]Segment{{36, 8}}}
	p, err := DecodePreamble(pre, Limits{})
	if err != nil || p != want {
		t.Fatalf("preamble %+v %v", p, err)
	}
	if got := binary.LittleEndian.Uint32(pre[28:]); got != 0x066bbd3f {
		t.Errorf("preamble crc %#x", got)
	}
	for i := 0; i < PreambleLen; i++ {
		bad := bytes.Clone(pre)
		bad[i] ^= 0x10
		if _, err := DecodePreamble(bad, Limits{}); !errors.Is(err, ErrBadCRC) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	// a corrupted control payload fails its crc
	raw := bytes.Clone(fs[0].raw)
	raw[PreambleLen+3] ^= 1
	var f Frame
	if err := NewReader(bytes.NewReader(raw), Limits{}).ReadFrame(&f); !errors.Is(err, ErrBadCRC) {
		t.Fatalf("corrupted HELLO: %v", err)
	}
}

func equalTags(a, b []Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testdata/msgr1_banner.bin is the first 26 bytes the noauth cluster's mon
// sends on its v1 port.
func TestCapturedMsgr1Banner(t *testing.T) {
	b, err := os.ReadFile("testdata/msgr1_banner.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadBanner(bytes.NewReader(b)); !errors.Is(err, ErrMsgr1) {
		t.Fatalf("got %v, want ErrMsgr1", err)
	}
	if _, _, err := DecodeBannerPrefix(b); !errors.Is(err, ErrMsgr1) {
		t.Fatalf("prefix: %v", err)
	}
}
