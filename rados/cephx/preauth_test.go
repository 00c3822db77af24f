package cephx

// A test-only driver for the pre-authentication part of a msgr2.1 crc
// connection (banner, HELLO, AUTH_* rounds), built on the msgr2 wire codec.
// It lets the cephx integration tests talk to real mons and OSDs and record
// what they send, without depending on the messenger's connection code. It
// stops at AUTH_DONE / AUTH_BAD_METHOD: everything cephx does is complete by
// then (AUTH_SIGNATURE only uses the session key we returned).

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// authClient mirrors messenger.AuthClient.
type authClient interface {
	AuthRequest() (method uint32, modes []uint32, payload []byte, err error)
	HandleReplyMore(payload []byte) ([]byte, error)
	HandleDone(globalID uint64, conMode uint32, payload []byte) (sessionKey, conSecret []byte, err error)
	HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error
}

// preauthResult records one exchange.
type preauthResult struct {
	request    []byte   // our AUTH_REQUEST payload
	replyMore  [][]byte // each AUTH_REPLY_MORE payload
	requestMor [][]byte // each AUTH_REQUEST_MORE payload
	done       *msgr2.AuthDone
	sessionKey []byte
	conSecret  []byte
}

func preauth(ctx context.Context, t testing.TB, addr entity.Addr, a authClient) (*preauthResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr.IP.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	ours := msgr2.Banner{Supported: msgr2.SupportedFeatures, Required: msgr2.RequiredFeatures}
	if _, err := conn.Write(msgr2.AppendBanner(nil, ours)); err != nil {
		return nil, err
	}
	theirs, _, err := msgr2.ReadBanner(conn)
	if err != nil {
		return nil, fmt.Errorf("banner: %w", err)
	}
	if err := theirs.Check(ours); err != nil {
		return nil, err
	}
	w := msgr2.NewWriter()
	r := msgr2.NewReader(conn, msgr2.Limits{})
	send := func(tag msgr2.Tag, payload []byte) error {
		bufs, err := w.Frame(tag, payload)
		if err != nil {
			return err
		}
		for _, b := range bufs {
			if _, err := conn.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
	hello := msgr2.Hello{EntityType: entity.TypeClient, PeerAddr: addr}
	if err := send(msgr2.TagHello, hello.Encode(nil)); err != nil {
		return nil, err
	}
	var f msgr2.Frame
	if err := r.ReadFrame(&f); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	if f.Tag() != msgr2.TagHello {
		return nil, fmt.Errorf("expected HELLO, got tag %d", f.Tag())
	}

	method, modes, payload, err := a.AuthRequest()
	if err != nil {
		return nil, err
	}
	res := &preauthResult{request: payload}
	req := msgr2.AuthRequest{Method: method, PreferredModes: modes, Payload: payload}
	if err := send(msgr2.TagAuthRequest, req.Encode(nil)); err != nil {
		return nil, err
	}
	for round := 0; round < 10; round++ {
		if err := r.ReadFrame(&f); err != nil {
			return res, fmt.Errorf("auth: %w", err)
		}
		switch f.Tag() {
		case msgr2.TagAuthReplyMore:
			var m msgr2.AuthReplyMore
			if err := m.Decode(f.Segments[0]); err != nil {
				return res, err
			}
			res.replyMore = append(res.replyMore, append([]byte(nil), m.Payload...)) // the reader reuses its buffer
			more, err := a.HandleReplyMore(m.Payload)
			if err != nil {
				return res, err
			}
			res.requestMor = append(res.requestMor, more)
			rm := msgr2.AuthRequestMore{Payload: more}
			if err := send(msgr2.TagAuthRequestMore, rm.Encode(nil)); err != nil {
				return res, err
			}
		case msgr2.TagAuthDone:
			var d msgr2.AuthDone
			if err := d.Decode(f.Segments[0]); err != nil {
				return res, err
			}
			d.Payload = append([]byte(nil), d.Payload...)
			res.done = &d
			res.sessionKey, res.conSecret, err = a.HandleDone(d.GlobalID, d.ConMode, d.Payload)
			return res, err
		case msgr2.TagAuthBadMethod:
			var b msgr2.AuthBadMethod
			if err := b.Decode(f.Segments[0]); err != nil {
				return res, err
			}
			return res, a.HandleBadMethod(b.Method, b.Result, b.AllowedMethods, b.AllowedModes)
		default:
			return res, fmt.Errorf("unexpected tag %d during auth", f.Tag())
		}
	}
	return res, fmt.Errorf("too many auth rounds")
}
