package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

func testExports() []*Export {
	return []*Export{
		{Name: "disk", Description: "a test disk", Backend: memory.New(1 << 20)},
		{Name: "ro", Backend: memory.New(64 << 10), ReadOnly: true, MinBlockSize: 512, PreferredBlockSize: 4096, MaxPayload: 1 << 20},
	}
}

func serveHandshake(t *testing.T) (*rawClient, <-chan error) {
	s := newTestServer(t, testExports()...)
	cl, errc, _ := serveOne(t, s.ServeConn)
	return cl, errc
}

func TestGoInfo(t *testing.T) {
	cl, errc := serveHandshake(t)
	cl.greet(clientFixedNewstyle | clientNoZeroes)

	cl.option(optInfo, appendInfoRequest(nil, "ro", infoName, infoDescription, infoBlockSize))
	got := map[uint16][]byte{}
	for {
		rep := cl.optReply()
		if rep.typ == repAck {
			break
		}
		if rep.typ != repInfo || rep.code != optInfo {
			t.Fatalf("reply %+v", rep)
		}
		got[binary.BigEndian.Uint16(rep.data)] = rep.data[2:]
	}
	exp := got[infoExport]
	if len(exp) != 10 || binary.BigEndian.Uint64(exp) != 64<<10 {
		t.Fatalf("NBD_INFO_EXPORT % x", exp)
	}
	flags := TransmissionFlags(binary.BigEndian.Uint16(exp[8:]))
	want := FlagHasFlags | FlagReadOnly | FlagSendFlush | FlagSendFUA | FlagCanMultiConn
	if flags != want {
		t.Errorf("flags %#x, want %#x", flags, want)
	}
	if string(got[infoName]) != "ro" {
		t.Errorf("NBD_INFO_NAME %q", got[infoName])
	}
	if _, ok := got[infoDescription]; ok {
		t.Errorf("empty description sent")
	}
	bs := got[infoBlockSize]
	if len(bs) != 12 || binary.BigEndian.Uint32(bs) != 512 || binary.BigEndian.Uint32(bs[4:]) != 4096 || binary.BigEndian.Uint32(bs[8:]) != 1<<20 {
		t.Errorf("NBD_INFO_BLOCK_SIZE % x", bs)
	}

	// Still haggling after NBD_OPT_INFO: structured replies, then GO.
	cl.option(optStructuredReply, nil)
	cl.expectReply(optStructuredReply, repAck)
	cl.option(optStructuredReply, nil)
	cl.expectReply(optStructuredReply, repErrInvalid)
	cl.option(optGo, appendInfoRequest(nil, "disk", infoDescription))
	sawDesc := false
	for {
		rep := cl.optReply()
		if rep.typ == repAck {
			break
		}
		switch binary.BigEndian.Uint16(rep.data) {
		case infoDescription:
			sawDesc = string(rep.data[2:]) == "a test disk"
		case infoExport:
			f := TransmissionFlags(binary.BigEndian.Uint16(rep.data[10:]))
			if f&FlagSendDF == 0 || f&FlagSendWriteZeroes == 0 || f&FlagSendFastZero == 0 || f&FlagSendTrim == 0 || f&FlagReadOnly != 0 {
				t.Errorf("disk flags %#x", f)
			}
		}
	}
	if !sawDesc {
		t.Error("no NBD_INFO_DESCRIPTION")
	}
	// Transmission works: a structured read of zeroes.
	cl.request(cmdRead, 0, 7, 4096, 512, nil)
	ch := cl.chunk()
	if ch.typ != replyOffsetData || ch.flags != replyFlagDone || ch.cookie != 7 || len(ch.payload) != 8+512 {
		t.Fatalf("chunk %+v", ch)
	}
	if binary.BigEndian.Uint64(ch.payload) != 4096 || !bytes.Equal(ch.payload[8:], make([]byte, 512)) {
		t.Fatal("bad OFFSET_DATA payload")
	}
	cl.request(cmdDisc, 0, 8, 0, 0, nil)
	cl.expectClosed()
	if err := waitErr(t, errc); err != nil {
		t.Fatalf("ServeConn: %v", err)
	}
}

func TestExportName(t *testing.T) {
	for _, noZeroes := range []bool{false, true} {
		cl, errc := serveHandshake(t)
		cf := clientFixedNewstyle
		if noZeroes {
			cf |= clientNoZeroes
		}
		cl.greet(cf)
		cl.option(optExportName, []byte("disk"))
		b := cl.read(10)
		if binary.BigEndian.Uint64(b) != 1<<20 {
			t.Fatalf("size % x", b)
		}
		if !noZeroes {
			if z := cl.read(124); !bytes.Equal(z, make([]byte, 124)) {
				t.Fatal("padding not zero")
			}
		}
		// The next bytes must be the reply to our request, not padding.
		cl.request(cmdFlush, 0, 99, 0, 0, nil)
		if errno, cookie := cl.simpleReply(); errno != 0 || cookie != 99 {
			t.Fatalf("flush reply %d %d", errno, cookie)
		}
		cl.c.Close()
		if err := waitErr(t, errc); err != nil {
			t.Fatalf("ServeConn: %v", err)
		}
	}
}

func TestList(t *testing.T) {
	cl, errc := serveHandshake(t)
	cl.greet(clientFixedNewstyle)
	cl.option(optList, []byte{1})
	cl.expectReply(optList, repErrInvalid)
	cl.option(optList, nil)
	var names []string
	for {
		rep := cl.optReply()
		if rep.typ == repAck {
			break
		}
		if rep.typ != repServer {
			t.Fatalf("reply %+v", rep)
		}
		n := binary.BigEndian.Uint32(rep.data)
		names = append(names, string(rep.data[4:4+n])+"|"+string(rep.data[4+n:]))
	}
	if len(names) != 2 || names[0] != "disk|a test disk" || names[1] != "ro|" {
		t.Fatalf("list %q", names)
	}
	cl.option(optAbort, nil)
	cl.expectReply(optAbort, repAck)
	cl.expectClosed()
	if err := waitErr(t, errc); !errors.Is(err, ErrAborted) {
		t.Fatalf("ServeConn: %v, want ErrAborted", err)
	}
}

// TestOptionErrors sends bad options; each gets an error reply and the
// haggling goes on.
func TestOptionErrors(t *testing.T) {
	cl, errc := serveHandshake(t)
	cl.greet(clientFixedNewstyle | clientNoZeroes)
	cases := []struct {
		code uint32
		data []byte
		want uint32
	}{
		{999, []byte("whatever"), repErrUnsup},
		{optStartTLS, nil, repErrUnsup},
		{optExtendedHeaders, nil, repErrUnsup},
		{optSetMetaContext, []byte{0, 0, 0, 0}, repErrInvalid}, // before structured replies
		{optGo, appendInfoRequest(nil, "nope"), repErrUnknown},
		{optInfo, appendInfoRequest(nil, "nope"), repErrUnknown},
		{optGo, []byte{0, 0, 0}, repErrInvalid},                                    // too short
		{optGo, []byte{0, 0, 0, 200, 'd', 0, 0}, repErrInvalid},                    // name longer than the option
		{optGo, []byte{0, 0, 0, 4, 'd', 'i', 's', 'k', 0, 2, 0, 3}, repErrInvalid}, // count says 2, has 1
		{optGo, []byte{0, 0, 0x20, 0, 0, 0}, repErrInvalid},                        // name > 4096
		{optStructuredReply, []byte{1}, repErrInvalid},
	}
	for _, c := range cases {
		cl.option(c.code, c.data)
		rep := cl.optReply()
		if rep.code != c.code || rep.typ != c.want {
			t.Errorf("option %d % x: reply (%d, %#x %q), want %#x", c.code, c.data, rep.code, rep.typ, rep.data, c.want)
		}
	}
	cl.option(optStructuredReply, nil)
	cl.expectReply(optStructuredReply, repAck)
	cl.option(optListMetaContext, []byte{0, 0, 0, 0})
	cl.expectReply(optListMetaContext, repErrUnsup)
	// Still usable.
	cl.option(optGo, appendInfoRequest(nil, "disk"))
	for cl.optReply().typ != repAck {
	}
	cl.request(cmdDisc, 0, 0, 0, 0, nil)
	if err := waitErr(t, errc); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeHangups covers input after which the server must hang up.
func TestHandshakeHangups(t *testing.T) {
	cases := map[string]func(cl *rawClient){
		"client flags": func(cl *rawClient) { cl.greet(1 << 7) },
		"option magic": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			cl.write(bytes.Repeat([]byte{0x55}, 16))
		},
		"option length": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			cl.write(appendOptionHeader(nil, optGo, 0xffffffff))
		},
		"export name unknown": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			cl.option(optExportName, []byte("nope"))
		},
		"export name too long": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			cl.option(optExportName, make([]byte, 5000))
		},
		"truncated option": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			cl.write(appendOptionHeader(nil, optGo, 100)[:10])
			cl.c.(*net.UnixConn).CloseWrite()
		},
		"option flood": func(cl *rawClient) {
			cl.greet(clientFixedNewstyle)
			var b []byte
			for range maxOptions + 1 {
				b = appendOptionHeader(b, 999, 0)
			}
			go cl.c.Write(b) // the server's replies fill the socket buffer meanwhile
		},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			cl, errc := serveHandshake(t)
			f(cl)
			cl.expectClosed()
			if err := waitErr(t, errc); err == nil {
				t.Fatal("ServeConn returned nil")
			}
		})
	}
}

func TestHandshakeCancel(t *testing.T) {
	s := newTestServer(t, testExports()...)
	cl, errc, cancel := serveOne(t, s.ServeConn)
	cl.read(18)
	cancel()
	cl.expectClosed()
	if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("ServeConn: %v", err)
	}
}
