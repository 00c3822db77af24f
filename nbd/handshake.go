package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// handshake runs the fixed newstyle negotiation on c and returns the
// claim on the export the client chose (see Server.claim; the caller
// releases it) and whether it negotiated structured replies. br and bw
// wrap c and carry on into the transmission phase (a client may pipeline
// its first request right behind NBD_OPT_GO).
func (s *Server) handshake(ctx context.Context, c net.Conn, br *bufio.Reader, bw *bufio.Writer) (*exportUse, bool, error) {
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	c.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	h := handshaker{s: s, br: br, bw: bw}
	err := h.run()
	switch {
	case err != nil && ctx.Err() != nil:
		err = context.Cause(ctx)
	case err != nil:
	case !stop():
		// ctx was cancelled while the deadline was being armed.
		err = context.Cause(ctx)
	default:
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		s.release(h.use)
		return nil, false, err
	}
	return h.use, h.structured, nil
}

// handshaker holds the state of one negotiation.
type handshaker struct {
	s          *Server
	br         *bufio.Reader
	bw         *bufio.Writer
	noZeroes   bool
	structured bool
	use        *exportUse // the claim on the chosen export, once chosen
	buf        []byte     // option payload, reused
	out        []byte     // reply scratch, reused
}

// run negotiates until the client chose an export (h.use).
func (h *handshaker) run() error {
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], magicInit)
	binary.BigEndian.PutUint64(b[8:], magicOption)
	binary.BigEndian.PutUint16(b[16:], flagFixedNewstyle|flagNoZeroes)
	h.bw.Write(b[:])
	if err := h.bw.Flush(); err != nil {
		return err
	}
	if _, err := io.ReadFull(h.br, b[:4]); err != nil {
		return err
	}
	cflags := binary.BigEndian.Uint32(b[:4])
	if cflags&^(clientFixedNewstyle|clientNoZeroes) != 0 {
		return protoErrorf("handshake", "unknown client flags %#x", cflags)
	}
	h.noZeroes = cflags&clientNoZeroes != 0

	var hdr [optionHeaderSize]byte
	for range maxOptions {
		if _, err := io.ReadFull(h.br, hdr[:]); err != nil {
			return err
		}
		opt, err := parseOptionHeader(hdr[:])
		if err != nil {
			return err
		}
		if opt.length > maxOptionLen {
			return protoErrorf("handshake", "option %d with %d bytes of data", opt.code, opt.length)
		}
		if cap(h.buf) < int(opt.length) {
			h.buf = make([]byte, opt.length)
		}
		data := h.buf[:opt.length]
		if _, err := io.ReadFull(h.br, data); err != nil {
			return err
		}
		done, err := h.option(opt.code, data)
		if err != nil {
			return err
		}
		if err := h.bw.Flush(); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	return protoErrorf("handshake", "more than %d options", maxOptions)
}

// option handles one option. done reports that the handshake is over,
// with h.use the claim on the chosen export.
func (h *handshaker) option(code uint32, data []byte) (done bool, err error) {
	switch code {
	case optExportName:
		if len(data) > maxStringLen {
			return false, protoErrorf("handshake", "export name of %d bytes", len(data))
		}
		exp := h.s.lookup(string(data))
		if exp == nil {
			// No error reply exists for NBD_OPT_EXPORT_NAME: hang up.
			return false, fmt.Errorf("nbd: handshake: unknown export %q", data)
		}
		if h.use = h.s.claim(exp); h.use == nil {
			// No error reply here either.
			return false, fmt.Errorf("%w: export %q has %d connections", ErrTooManyConns, data, h.s.MaxConnsPerExport)
		}
		var b [10 + 124]byte
		binary.BigEndian.PutUint64(b[:], uint64(exp.Backend.Size()))
		binary.BigEndian.PutUint16(b[8:], uint16(exp.TransmissionFlags(h.structured)))
		n := len(b)
		if h.noZeroes {
			n = 10
		}
		h.bw.Write(b[:n])
		return true, nil

	case optAbort:
		h.reply(code, repAck)
		h.bw.Flush()
		return false, ErrAborted

	case optList:
		if len(data) != 0 {
			h.replyErr(code, repErrInvalid, "NBD_OPT_LIST takes no data")
			return false, nil
		}
		for _, e := range h.s.list() {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(len(e.Name)))
			h.out = appendOptionReply(h.out[:0], code, repServer, b[:], []byte(e.Name), []byte(e.Description))
			h.bw.Write(h.out)
		}
		h.reply(code, repAck)
		return false, nil

	case optStructuredReply:
		switch {
		case len(data) != 0:
			h.replyErr(code, repErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data")
		case h.structured:
			h.replyErr(code, repErrInvalid, "structured replies already negotiated")
		default:
			h.structured = true
			h.reply(code, repAck)
		}
		return false, nil

	case optInfo, optGo:
		req, err := parseInfoRequest(data)
		if err != nil {
			h.replyErr(code, repErrInvalid, err.Error())
			return false, nil
		}
		exp := h.s.lookup(req.name)
		if exp == nil {
			h.replyErr(code, repErrUnknown, "unknown export "+fmt.Sprintf("%q", req.name))
			return false, nil
		}
		if code == optGo {
			if h.use = h.s.claim(exp); h.use == nil {
				h.replyErr(code, repErrPolicy, fmt.Sprintf("export %q has %d connections, its limit", req.name, h.s.MaxConnsPerExport))
				return false, nil
			}
		}
		h.out = appendOptionReply(h.out[:0], code, repInfo,
			appendInfoExport(nil, uint64(exp.Backend.Size()), exp.TransmissionFlags(h.structured)))
		if req.wants(infoName) {
			h.out = appendOptionReply(h.out, code, repInfo, appendInfoString(nil, infoName, exp.Name))
		}
		if req.wants(infoDescription) && exp.Description != "" {
			h.out = appendOptionReply(h.out, code, repInfo, appendInfoString(nil, infoDescription, exp.Description))
		}
		// Always advertised: clients ignore what they did not ask for, and
		// nbdinfo shows it.
		h.out = appendOptionReply(h.out, code, repInfo,
			appendInfoBlockSize(nil, exp.minBlock(), exp.preferredBlock(), exp.maxPayload()))
		h.out = appendOptionReply(h.out, code, repAck)
		h.bw.Write(h.out)
		return code == optGo, nil

	case optListMetaContext, optSetMetaContext:
		if !h.structured {
			h.replyErr(code, repErrInvalid, "meta contexts need structured replies")
		} else {
			h.replyErr(code, repErrUnsup, "meta contexts are not supported")
		}
		return false, nil
	}
	h.replyErr(code, repErrUnsup, fmt.Sprintf("option %d not supported", code))
	return false, nil
}

func (h *handshaker) reply(code, typ uint32) {
	h.out = appendOptionReply(h.out[:0], code, typ)
	h.bw.Write(h.out)
}

func (h *handshaker) replyErr(code, typ uint32, msg string) {
	h.out = appendOptionReply(h.out[:0], code, typ, []byte(msg))
	h.bw.Write(h.out)
}
