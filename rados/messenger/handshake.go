package messenger

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// maxAuthRounds bounds the AUTH_REPLY_MORE rounds of one handshake (cephx
// needs one, the OSD authorizer challenge one).
const maxAuthRounds = 8

// processGlobalSeq backs Config.GlobalSeq when it is nil.
var processGlobalSeq atomic.Uint64

// recorder passes reads through and, while rec is non-nil, keeps a copy of
// every byte read (the pre-auth bytes covered by AUTH_SIGNATURE).
type recorder struct {
	r   io.Reader
	rec []byte
	on  bool
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.on && n > 0 {
		r.rec = append(r.rec, p[:n]...)
	}
	return n, err
}

// handshake holds the state of one Dial.
type handshake struct {
	c     *Conn
	in    *recorder
	txrec []byte // bytes sent before AUTH_SIGNATURE
	txon  bool
	frame msgr2.Frame
	buf   []byte // scratch for control payloads
}

func (h *handshake) send(tag msgr2.Tag, payload []byte) error {
	bufs, err := h.c.wr.Frame(tag, payload)
	if err != nil {
		return err
	}
	if h.txon {
		for _, b := range bufs {
			h.txrec = append(h.txrec, b...)
		}
	}
	nb := net.Buffers(bufs)
	_, err = nb.WriteTo(h.c.nc)
	return err
}

func (h *handshake) recv() (*msgr2.Frame, error) {
	if err := h.c.rd.ReadFrame(&h.frame); err != nil {
		return nil, err
	}
	return &h.frame, nil
}

// run performs the client handshake up to SERVER_IDENT, phase by phase
// (msgr2.1: banner, HELLO, AUTH_*, AUTH_SIGNATURE, CLIENT_IDENT /
// SERVER_IDENT). A failure names the phase it happened in.
func (h *handshake) run() (string, error) {
	if err := h.banner(); err != nil {
		return "banner", err
	}
	sh, err := h.hello()
	if err != nil {
		return "hello", err
	}
	sessionKey, conSecret, err := h.auth()
	if err != nil {
		return "auth", err
	}
	rxSig, txSig := h.endPreAuth(sessionKey)
	if err := h.enableSecure(conSecret); err != nil {
		return "auth", err
	}
	if err := h.signatures(rxSig, txSig); err != nil {
		return "signature", err
	}
	if err := h.ident(sh); err != nil {
		return "ident", err
	}
	return "", nil
}

// banner sends our banner at once, then reads and checks theirs. From
// here on both directions are recorded for AUTH_SIGNATURE.
func (h *handshake) banner() error {
	c := h.c
	h.txon = true
	h.in.on = true
	ours := msgr2.Banner{Supported: msgr2.SupportedFeatures, Required: msgr2.RequiredFeatures}
	banner := msgr2.AppendBanner(nil, ours)
	h.txrec = append(h.txrec, banner...)
	if _, err := c.nc.Write(banner); err != nil {
		return err
	}
	theirs, _, err := msgr2.ReadBanner(h.in)
	if err != nil {
		if errors.Is(err, msgr2.ErrMsgr1) || errors.Is(err, msgr2.ErrBadBanner) {
			return fmt.Errorf("%w: %w", ErrNotMsgr2, err)
		}
		return err
	}
	if err := theirs.Check(ours); err != nil {
		return fmt.Errorf("%w: %w", ErrNotMsgr2, err)
	}
	return nil
}

// hello exchanges HELLO frames and returns the server's, which tells our
// address as the server sees it.
func (h *handshake) hello() (msgr2.Hello, error) {
	c, cfg := h.c, &h.c.cfg
	var sh msgr2.Hello
	hello := msgr2.Hello{EntityType: entity.TypeClient, PeerAddr: cfg.Addr}
	if err := h.send(msgr2.TagHello, hello.Encode(h.buf[:0])); err != nil {
		return sh, err
	}
	f, err := h.recv()
	if err != nil {
		return sh, err
	}
	if f.Tag() != msgr2.TagHello {
		return sh, unexpected(f.Tag(), "HELLO")
	}
	if err := sh.Decode(f.Segments[0]); err != nil {
		return sh, protoErr(err)
	}
	if cfg.PeerType != 0 && sh.EntityType != cfg.PeerType {
		return sh, fmt.Errorf("%w: peer is a %s, expected a %s", ErrWrongPeer, sh.EntityType, cfg.PeerType)
	}
	c.peer.MyAddr = sh.PeerAddr
	c.peerType = sh.EntityType
	return sh, nil
}

// auth runs AUTH_REQUEST and the AUTH_REPLY_MORE rounds up to AUTH_DONE
// and returns the session key and connection secret the AuthClient
// derived.
func (h *handshake) auth() (sessionKey, conSecret []byte, err error) {
	cfg := &h.c.cfg
	if cfg.Auth == nil {
		return nil, nil, fmt.Errorf("%w: no AuthClient configured", ErrAuth)
	}
	method, modes, payload, err := cfg.Auth.AuthRequest()
	if err != nil {
		return nil, nil, err
	}
	areq := msgr2.AuthRequest{Method: method, PreferredModes: modes, Payload: payload}
	if err := h.send(msgr2.TagAuthRequest, areq.Encode(h.buf[:0])); err != nil {
		return nil, nil, err
	}
	for round := 0; ; round++ {
		if round > maxAuthRounds {
			return nil, nil, fmt.Errorf("%w: more than %d auth rounds", ErrProtocol, maxAuthRounds)
		}
		f, err := h.recv()
		if err != nil {
			return nil, nil, err
		}
		switch f.Tag() {
		case msgr2.TagAuthReplyMore:
			if err := h.authMore(f); err != nil {
				return nil, nil, err
			}
		case msgr2.TagAuthBadMethod:
			return nil, nil, h.authBadMethod(f)
		case msgr2.TagAuthDone:
			return h.authDone(f, modes)
		default:
			return nil, nil, unexpected(f.Tag(), "AUTH_REPLY_MORE, AUTH_BAD_METHOD or AUTH_DONE")
		}
	}
}

// authMore answers one AUTH_REPLY_MORE with AUTH_REQUEST_MORE.
func (h *handshake) authMore(f *msgr2.Frame) error {
	var m msgr2.AuthReplyMore
	if err := m.Decode(f.Segments[0]); err != nil {
		return protoErr(err)
	}
	out, err := h.c.cfg.Auth.HandleReplyMore(m.Payload)
	if err != nil {
		return authErr(err)
	}
	more := msgr2.AuthRequestMore{Payload: out}
	return h.send(msgr2.TagAuthRequestMore, more.Encode(h.buf[:0]))
}

// authBadMethod turns AUTH_BAD_METHOD into the handshake's error.
func (h *handshake) authBadMethod(f *msgr2.Frame) error {
	var m msgr2.AuthBadMethod
	if err := m.Decode(f.Segments[0]); err != nil {
		return protoErr(err)
	}
	err := h.c.cfg.Auth.HandleBadMethod(m.Method, m.Result, m.AllowedMethods, m.AllowedModes)
	if err == nil {
		err = fmt.Errorf("server refused auth method %d (result %d); allowed methods %v, modes %v",
			m.Method, m.Result, m.AllowedMethods, m.AllowedModes)
	}
	return authErr(err)
}

// authDone checks AUTH_DONE's connection mode against what we offered and
// hands its payload to the AuthClient.
func (h *handshake) authDone(f *msgr2.Frame, modes []uint32) (sessionKey, conSecret []byte, err error) {
	var m msgr2.AuthDone
	if err := m.Decode(f.Segments[0]); err != nil {
		return nil, nil, protoErr(err)
	}
	if m.ConMode != ModeCRC && m.ConMode != ModeSecure {
		return nil, nil, fmt.Errorf("%w: server picked unknown con mode %d", ErrProtocol, m.ConMode)
	}
	if !contains(modes, m.ConMode) {
		return nil, nil, fmt.Errorf("%w: server picked con mode %d, we offered %v", ErrProtocol, m.ConMode, modes)
	}
	sessionKey, conSecret, err = h.c.cfg.Auth.HandleDone(m.GlobalID, m.ConMode, m.Payload)
	if err != nil {
		return nil, nil, authErr(err)
	}
	h.c.peer.ConMode = m.ConMode
	return sessionKey, conSecret, nil
}

// endPreAuth stops recording and signs what was recorded: everything
// received so far, AUTH_DONE included, is signed by us (rxSig); everything
// we sent so far is what the server signs (txSig).
func (h *handshake) endPreAuth(sessionKey []byte) (rxSig, txSig [msgr2.SignatureLen]byte) {
	h.in.on = false
	h.txon = false
	rxSig = signature(sessionKey, h.in.rec)
	txSig = signature(sessionKey, h.txrec)
	h.in.rec, h.txrec = nil, nil
	return rxSig, txSig
}

// enableSecure switches both directions to AES-GCM in secure mode.
func (h *handshake) enableSecure(conSecret []byte) error {
	c := h.c
	if c.peer.ConMode != ModeSecure {
		return nil
	}
	key, rx, tx, err := msgr2.ClientSecret(conSecret)
	if err != nil {
		return authErr(err)
	}
	if err := c.wr.EnableSecure(key, tx); err != nil {
		return authErr(err)
	}
	if err := c.rd.EnableSecure(key, rx); err != nil {
		return authErr(err)
	}
	return nil
}

// signatures sends our AUTH_SIGNATURE and checks the server's.
func (h *handshake) signatures(rxSig, txSig [msgr2.SignatureLen]byte) error {
	sig := msgr2.AuthSignature{HMAC: rxSig}
	if err := h.send(msgr2.TagAuthSignature, sig.Encode(h.buf[:0])); err != nil {
		return err
	}
	f, err := h.recv()
	if err != nil {
		return err
	}
	if f.Tag() != msgr2.TagAuthSignature {
		return unexpected(f.Tag(), "AUTH_SIGNATURE")
	}
	if err := sig.Decode(f.Segments[0]); err != nil {
		return protoErr(err)
	}
	if !hmac.Equal(sig.HMAC[:], txSig[:]) {
		return fmt.Errorf("%w: bad AUTH_SIGNATURE from server", ErrAuth)
	}
	return nil
}

// ident sends CLIENT_IDENT (a lossy client session) and checks
// SERVER_IDENT; sh is the server's HELLO, which named our address.
func (h *handshake) ident(sh msgr2.Hello) error {
	c, cfg := h.c, &h.c.cfg
	myIP := sh.PeerAddr.IP.Addr()
	if !myIP.IsValid() {
		myIP = localIP(c.nc)
	}
	c.local = entity.Addr{Type: entity.AddrAny, Nonce: cfg.Nonce, IP: netip.AddrPortFrom(myIP, 0)}
	if c.local.Nonce == 0 {
		c.local.Nonce = randomNonZero32()
	}
	gseq := cfg.GlobalSeq
	if gseq == nil {
		gseq = func() uint64 { return processGlobalSeq.Add(1) }
	}
	ci := msgr2.ClientIdent{
		Addrs:             entity.AddrVec{c.local},
		TargetAddr:        cfg.Addr,
		GlobalID:          int64(cfg.GlobalID),
		GlobalSeq:         gseq(),
		SupportedFeatures: cfg.Features,
		RequiredFeatures:  cfg.Required,
		Flags:             msgr2.FlagLossy,
		Cookie:            randomNonZero64(),
	}
	if err := h.send(msgr2.TagClientIdent, ci.Encode(h.buf[:0])); err != nil {
		return err
	}
	f, err := h.recv()
	if err != nil {
		return err
	}
	if err := identReplyErr(f); err != nil {
		return err
	}
	var si msgr2.ServerIdent
	if err := si.Decode(f.Segments[0]); err != nil {
		return protoErr(err)
	}
	if !hasAddr(si.Addrs, cfg.Addr) {
		return fmt.Errorf("%w: server identifies as %s", ErrWrongPeer, si.Addrs)
	}
	if miss := cfg.Required &^ si.SupportedFeatures; miss != 0 {
		return &MissingFeaturesError{Missing: miss, Ours: true}
	}
	c.peer.Addrs = si.Addrs
	c.peer.GlobalID = si.GlobalID
	c.peer.Features = si.SupportedFeatures
	c.peer.Lossy = si.Lossy()
	return nil
}

// identReplyErr is nil for SERVER_IDENT and the error any other answer to
// CLIENT_IDENT means.
func identReplyErr(f *msgr2.Frame) error {
	switch f.Tag() {
	case msgr2.TagServerIdent:
		return nil
	case msgr2.TagIdentMissingFeatures:
		var m msgr2.IdentMissingFeatures
		if err := m.Decode(f.Segments[0]); err != nil {
			return protoErr(err)
		}
		return &MissingFeaturesError{Missing: m.Missing}
	case msgr2.TagWait:
		return ErrWait
	case msgr2.TagSessionReset, msgr2.TagSessionRetry, msgr2.TagSessionRetryGlobal, msgr2.TagSessionReconnectOK:
		return protoErr(msgr2.DecodeSessionFrame(f.Tag(), f.Segments[0]))
	}
	return unexpected(f.Tag(), "SERVER_IDENT")
}

// signature is HMAC-SHA256(key, b), or zeros without a session key (auth
// none), as Ceph and the kernel do.
func signature(key, b []byte) (sig [msgr2.SignatureLen]byte) {
	if len(key) == 0 {
		return sig
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	m.Sum(sig[:0])
	return sig
}

func hasAddr(v entity.AddrVec, a entity.Addr) bool {
	for _, x := range v {
		if x.Type == a.Type && x.Nonce == a.Nonce && x.IP.Port() == a.IP.Port() &&
			x.IP.Addr().Unmap() == a.IP.Addr().Unmap() {
			return true
		}
	}
	return false
}

func contains(v []uint32, x uint32) bool {
	for _, y := range v {
		if y == x {
			return true
		}
	}
	return false
}

func unexpected(t msgr2.Tag, want string) error {
	return fmt.Errorf("%w: got %s, expected %s", ErrProtocol, t, want)
}

func authErr(err error) error {
	if errors.Is(err, ErrAuth) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrAuth, err)
}

func localIP(nc net.Conn) netip.Addr {
	if ta, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

func randomNonZero64() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func randomNonZero32() uint32 {
	for {
		if v := uint32(randomNonZero64()); v != 0 {
			return v
		}
	}
}

// dial opens the TCP connection and runs the handshake under ctx.
func dial(ctx context.Context, cfg Config) (*Conn, error) {
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = 10 * time.Second
	}
	if cfg.KeepaliveTimeout <= 0 {
		cfg.KeepaliveTimeout = 30 * time.Second
	}
	clk := clock(realClock{})
	if cfg.hooks != nil && cfg.hooks.clock != nil {
		clk = cfg.hooks.clock
	}
	opErr := func(op string, err error) error {
		if ce := context.Cause(ctx); ce != nil && !errors.Is(err, ce) {
			err = fmt.Errorf("%w (%v)", ce, err)
		}
		return &OpError{Op: op, Addr: cfg.Addr, Err: err}
	}
	if cfg.Addr.IsBlank() {
		return nil, &OpError{Op: "dial", Addr: cfg.Addr, Err: errors.New("blank address")}
	}
	if cfg.Addr.Type == entity.AddrLegacy {
		return nil, &OpError{Op: "dial", Addr: cfg.Addr, Err: fmt.Errorf("%w: a v1 address cannot be dialled with msgr2", ErrNotMsgr2)}
	}
	dialer := cfg.Dialer
	if dialer == nil {
		var d net.Dialer
		dialer = d.DialContext
	}
	nc, err := dialer(ctx, "tcp", cfg.Addr.HostPort())
	if err != nil {
		return nil, opErr("dial", err)
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if cfg.hooks != nil && cfg.hooks.wrap != nil {
		nc = cfg.hooks.wrap(nc)
	}
	c := newConn(cfg, nc)
	c.clock = clk
	// Cancellation (or the context's deadline) during the handshake
	// becomes a socket deadline in the past, which unblocks any read or
	// write at once.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	h := &handshake{c: c, in: &recorder{r: c.br}, buf: make([]byte, 0, 512)}
	c.rd = msgr2.NewReader(h.in, cfg.Limits)
	op, err := h.run()
	// ctx.Err is checked too: Done closes before the AfterFunc counts as
	// started, so stop can still succeed just after the deadline.
	if stopped := stop(); err == nil && (!stopped || ctx.Err() != nil) {
		err = context.Cause(ctx)
		op = "handshake"
	}
	if err != nil {
		nc.Close()
		return nil, opErr(op, err)
	}
	nc.SetDeadline(time.Time{})
	c.start()
	return c, nil
}
