package msgr2

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// testdata/secure_*.bin is a real secure-mode exchange between our
// messenger (with the cephx package's MonAuth) and the Pacific 16.2.15 mon
// of the pacific-secure test cluster; secure_keys.txt holds that
// session's session key and connection secret (a throw-away cluster). The
// session: banner, HELLO, cephx AUTH_REQUEST / AUTH_REPLY_MORE /
// AUTH_REQUEST_MORE / AUTH_DONE in crc frames, then AES-128-GCM from the
// AUTH_SIGNATURE frames on: CLIENT_IDENT / SERVER_IDENT, MMonGetVersion →
// MMonGetVersionReply, MMonCommand {"prefix": "fsid"} → MMonCommandAck.

func secureKeys(t testing.TB) (sessionKey, conSecret []byte) {
	t.Helper()
	f, err := os.Open("testdata/secure_keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		b, _ := hex.DecodeString(v)
		switch k {
		case "session_key":
			sessionKey = b
		case "con_secret":
			conSecret = b
		}
	}
	if len(sessionKey) == 0 || len(conSecret) < ConSecretLen {
		t.Fatal("bad secure_keys.txt")
	}
	return sessionKey, conSecret
}

type secureFrame struct {
	capturedFrame
	ops uint64 // GCM operations it took (0 in crc mode)
}

// readSecureCapture reads a stream whose frames are crc frames up to and
// including the frame tagged switchAfter, and secure frames after it.
func readSecureCapture(t *testing.T, name string, switchAfter Tag, key []byte, nonce Nonce) ([]byte, []secureFrame) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(b)
	if _, _, err := ReadBanner(r); err != nil {
		t.Fatal(err)
	}
	rd := NewReader(r, Limits{})
	var out []secureFrame
	for r.Len() > 0 {
		off := len(b) - r.Len()
		before := rd.RxNonce().Counter()
		var f Frame
		if err := rd.ReadFrame(&f); err != nil {
			t.Fatalf("%s frame %d at %d: %v", name, len(out), off, err)
		}
		f.Segments[0] = bytes.Clone(f.Segments[0])
		sf := secureFrame{capturedFrame: capturedFrame{off: off, raw: b[off : len(b)-r.Len()], f: f}}
		if rd.Secure() {
			sf.ops = rd.RxNonce().Counter() - before
		}
		out = append(out, sf)
		if f.Tag() == switchAfter && !rd.Secure() {
			if err := rd.EnableSecure(key, nonce); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b, out
}

func TestCapturedSecureSession(t *testing.T) {
	sessionKey, secret := secureKeys(t)
	key, rx, tx, err := ClientSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	cb, cfs := readSecureCapture(t, "secure_client.bin", TagAuthRequestMore, key, tx)
	sb, sfs := readSecureCapture(t, "secure_server.bin", TagAuthDone, key, rx)

	wantC := []Tag{TagHello, TagAuthRequest, TagAuthRequestMore, TagAuthSignature, TagClientIdent, TagMessage}
	wantS := []Tag{TagHello, TagAuthReplyMore, TagAuthDone, TagAuthSignature, TagServerIdent}
	for i, w := range wantC {
		if i >= len(cfs) || cfs[i].f.Tag() != w {
			t.Fatalf("client frame %d: want %s", i, w)
		}
	}
	for i, w := range wantS {
		if i >= len(sfs) || sfs[i].f.Tag() != w {
			t.Fatalf("server frame %d: want %s", i, w)
		}
	}

	var done AuthDone
	if err := done.Decode(sfs[2].f.Segments[0]); err != nil || done.ConMode != ModeSecure {
		t.Fatalf("auth done %+v %v", done, err)
	}

	// AUTH_SIGNATURE: each side signs, with the session key, every byte it
	// received before: the client signs the server's banner through
	// AUTH_DONE, the server signs the client's banner through
	// AUTH_REQUEST_MORE.
	mac := func(b []byte) []byte {
		m := hmac.New(sha256.New, sessionKey)
		m.Write(b)
		return m.Sum(nil)
	}
	var sig AuthSignature
	sig.Decode(cfs[3].f.Segments[0])
	if want := mac(sb[:sfs[3].off]); !bytes.Equal(sig.HMAC[:], want) {
		t.Errorf("client signature %x, want %x", sig.HMAC, want)
	}
	sig.Decode(sfs[3].f.Segments[0])
	if want := mac(cb[:cfs[3].off]); !bytes.Equal(sig.HMAC[:], want) {
		t.Errorf("server signature %x, want %x", sig.HMAC, want)
	}

	// GCM operations per frame: 1 for a control segment of ≤ 48 bytes,
	// 2 above (SERVER_IDENT, CLIENT_IDENT), 2 for a message with a tail.
	for _, sf := range append(cfs[3:], sfs[3:]...) {
		want := uint64(1)
		if sf.f.Preamble.Len(0) > InlineLen || sf.f.Preamble.NumSegments > 1 {
			want = 2
		}
		if sf.f.Preamble.Len(0) > InlineLen && sf.f.Preamble.NumSegments > 1 {
			want = 3
		}
		if sf.ops != want {
			t.Errorf("%s at %d: %d GCM ops, want %d", sf.f.Tag(), sf.off, sf.ops, want)
		}
	}

	// The mon's MMonCommandAck carries the fsid in its data segment.
	var sawAck bool
	for _, sf := range sfs[4:] {
		var h MessageHeader
		if sf.f.Tag() == TagMessage && h.Decode(sf.f.Segments[0]) == nil && h.Type == 51 {
			sawAck = len(sf.f.Segments[3]) == 37
		}
	}
	if !sawAck {
		t.Error("no MMonCommandAck with a 37-byte data segment")
	}

	// Re-encrypting the mon's frames with the server's tx nonce (the
	// client's rx nonce) must give Ceph's exact bytes: our secure
	// assembler is byte-identical to Ceph's FrameAssembler.
	reassemble := func(name string, fs []secureFrame, from int, nonce Nonce) {
		w := NewWriter()
		for i, sf := range fs {
			if i == from {
				if err := w.EnableSecure(key, nonce); err != nil {
					t.Fatal(err)
				}
			}
			bufs, err := w.Frame(sf.f.Tag(), sf.f.Segments[:sf.f.Preamble.NumSegments]...)
			if err != nil {
				t.Fatal(err)
			}
			if got := bytes.Join(bufs, nil); !bytes.Equal(got, sf.raw) {
				t.Errorf("%s %s at %d differs:\n got %x\nwant %x", name, sf.f.Tag(), sf.off, got, sf.raw)
			}
		}
	}
	reassemble("server", sfs, 3, rx)
	reassemble("client", cfs, 3, tx)
}
