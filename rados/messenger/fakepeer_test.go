package messenger

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// fakePeer is a scripted msgr2.1 server on a loopback listener, built on
// the msgr2 codec. Each test drives it step by step from a goroutine.
type fakePeer struct {
	t    *testing.T
	ln   net.Listener
	addr entity.Addr
}

func newFakePeer(t *testing.T) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ap := netip.MustParseAddrPort(ln.Addr().String())
	return &fakePeer{t: t, ln: ln, addr: entity.Addr{Type: entity.AddrMsgr2, Nonce: 77, IP: ap}}
}

// serverConn is one accepted connection.
type serverConn struct {
	nc     net.Conn
	rec    *recorder
	rd     *msgr2.Reader
	wr     *msgr2.Writer
	txrec  []byte
	f      msgr2.Frame
	hello  msgr2.Hello
	areq   msgr2.AuthRequest
	cident msgr2.ClientIdent
}

func (p *fakePeer) accept() (*serverConn, error) {
	nc, err := p.ln.Accept()
	if err != nil {
		return nil, err
	}
	rec := &recorder{r: nc, on: true}
	return &serverConn{nc: nc, rec: rec, rd: msgr2.NewReader(rec, msgr2.Limits{}), wr: msgr2.NewWriter()}, nil
}

func (s *serverConn) writeRaw(b []byte) error {
	s.txrec = append(s.txrec, b...)
	_, err := s.nc.Write(b)
	return err
}

func (s *serverConn) send(tag msgr2.Tag, segs ...[]byte) error {
	bufs, err := s.wr.Frame(tag, segs...)
	if err != nil {
		return err
	}
	return s.writeRaw(bytes.Join(bufs, nil))
}

func (s *serverConn) recv(want msgr2.Tag) (*msgr2.Frame, error) {
	if err := s.rd.ReadFrame(&s.f); err != nil {
		return nil, err
	}
	if want != 0 && s.f.Tag() != want {
		return nil, errors.New("fake peer: got " + s.f.Tag().String() + ", want " + want.String())
	}
	return &s.f, nil
}

// serverOpts shape the scripted handshake.
type serverOpts struct {
	peerType    entity.Type
	mode        uint32
	sessionKey  []byte
	conSecret   []byte
	replyMore   bool // one AUTH_REPLY_MORE round
	badSig      bool // send a wrong AUTH_SIGNATURE
	identAddr   *entity.Addr
	identTag    msgr2.Tag // replace SERVER_IDENT (e.g. WAIT)
	identBody   []byte
	features    uint64
	noHelloWait bool
}

// handshake runs the server side up to SERVER_IDENT.
func (p *fakePeer) handshake(s *serverConn, o serverOpts) error {
	if o.peerType == 0 {
		o.peerType = entity.TypeMon
	}
	if o.mode == 0 {
		o.mode = ModeCRC
	}
	if err := s.writeRaw(msgr2.AppendBanner(nil, msgr2.Banner{Supported: 1})); err != nil {
		return err
	}
	if _, _, err := msgr2.ReadBanner(s.rd0()); err != nil {
		return err
	}
	f, err := s.recv(msgr2.TagHello)
	if err != nil {
		return err
	}
	if err := s.hello.Decode(f.Segments[0]); err != nil {
		return err
	}
	client := entity.Addr{Type: entity.AddrMsgr2, IP: netip.MustParseAddrPort(s.nc.RemoteAddr().String())}
	h := msgr2.Hello{EntityType: o.peerType, PeerAddr: client}
	if err := s.send(msgr2.TagHello, h.Encode(nil)); err != nil {
		return err
	}
	if f, err = s.recv(msgr2.TagAuthRequest); err != nil {
		return err
	}
	if err := s.areq.Decode(f.Segments[0]); err != nil {
		return err
	}
	s.areq.Payload = bytes.Clone(s.areq.Payload)
	if o.replyMore {
		m := msgr2.AuthReplyMore{Payload: []byte("challenge")}
		if err := s.send(msgr2.TagAuthReplyMore, m.Encode(nil)); err != nil {
			return err
		}
		if f, err = s.recv(msgr2.TagAuthRequestMore); err != nil {
			return err
		}
		var more msgr2.AuthRequestMore
		if err := more.Decode(f.Segments[0]); err != nil || string(more.Payload) != "answer:challenge" {
			return errors.New("fake peer: bad AUTH_REQUEST_MORE")
		}
	}
	done := msgr2.AuthDone{GlobalID: 4242, ConMode: o.mode, Payload: []byte("done")}
	if err := s.send(msgr2.TagAuthDone, done.Encode(nil)); err != nil {
		return err
	}
	s.rec.on = false
	ourSig := signature(o.sessionKey, s.rec.rec) // over what the client sent us
	theirWant := signature(o.sessionKey, s.txrec)
	if o.mode == ModeSecure {
		key, crx, ctx, err := msgr2.ClientSecret(o.conSecret)
		if err != nil {
			return err
		}
		// the server uses the client's nonces the other way round
		if err := s.wr.EnableSecure(key, crx); err != nil {
			return err
		}
		if err := s.rd.EnableSecure(key, ctx); err != nil {
			return err
		}
	}
	if f, err = s.recv(msgr2.TagAuthSignature); err != nil {
		return err
	}
	var sig msgr2.AuthSignature
	if err := sig.Decode(f.Segments[0]); err != nil {
		return err
	}
	if !hmac.Equal(sig.HMAC[:], theirWant[:]) {
		return errors.New("fake peer: bad client signature")
	}
	if o.badSig {
		ourSig[0] ^= 1
	}
	out := msgr2.AuthSignature{HMAC: ourSig}
	if err := s.send(msgr2.TagAuthSignature, out.Encode(nil)); err != nil {
		return err
	}
	if o.badSig {
		return nil
	}
	if f, err = s.recv(msgr2.TagClientIdent); err != nil {
		return err
	}
	if err := s.cident.Decode(f.Segments[0]); err != nil {
		return err
	}
	if o.identTag != 0 {
		return s.send(o.identTag, o.identBody)
	}
	addr := p.addr
	if o.identAddr != nil {
		addr = *o.identAddr
	}
	si := msgr2.ServerIdent{
		Addrs:             entity.AddrVec{addr},
		GlobalID:          3,
		GlobalSeq:         1,
		SupportedFeatures: o.features,
		Flags:             msgr2.FlagLossy,
	}
	return s.send(msgr2.TagServerIdent, si.Encode(nil))
}

// rd0 exposes the recorded reader for the banner.
func (s *serverConn) rd0() io.Reader { return s.rec }

// testAuth is an AuthClient for the fake peer: one optional challenge
// round, then a fixed session key and connection secret.
type testAuth struct {
	modes      []uint32
	sessionKey []byte
	conSecret  []byte
	gotDone    []byte
}

func (a *testAuth) AuthRequest() (uint32, []uint32, []byte, error) {
	return AuthMethodCephx, a.modes, []byte("request"), nil
}

func (a *testAuth) HandleReplyMore(p []byte) ([]byte, error) {
	return append([]byte("answer:"), p...), nil
}

func (a *testAuth) HandleDone(gid uint64, mode uint32, p []byte) ([]byte, []byte, error) {
	a.gotDone = bytes.Clone(p)
	if mode == ModeCRC {
		return a.sessionKey, nil, nil
	}
	return a.sessionKey, a.conSecret, nil
}

func (a *testAuth) HandleBadMethod(m uint32, r int32, am, amo []uint32) error {
	return errors.New("bad method")
}

func testSecret() []byte {
	s := make([]byte, 40)
	for i := range s {
		s[i] = byte(i + 1)
	}
	return s
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
