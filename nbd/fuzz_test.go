package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd/memory"
)

func FuzzParseRequest(f *testing.F) {
	f.Add(appendRequest(nil, requestHeader{typ: cmdRead, cookie: 1, offset: 4096, length: 512}))
	f.Add(appendRequest(nil, requestHeader{typ: cmdWrite, flags: cmdFlagFUA, cookie: 2, length: 1 << 25}))
	f.Add(bytes.Repeat([]byte{0xff}, 28))
	f.Add([]byte{0x25, 0x60, 0x95, 0x13})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseRequest(b)
		if err != nil {
			return
		}
		if got := appendRequest(nil, h); !bytes.Equal(got, b[:requestSize]) {
			t.Fatalf("round trip % x != % x", got, b[:requestSize])
		}
	})
}

func FuzzParseInfoRequest(f *testing.F) {
	f.Add(appendInfoRequest(nil, "disk", infoName, infoBlockSize))
	f.Add(appendInfoRequest(nil, ""))
	f.Add([]byte{0, 0, 0, 9, 'x', 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseInfoRequest(b)
		if err != nil {
			return
		}
		var infos []uint16
		for i := 0; i < len(r.infos); i += 2 {
			infos = append(infos, binary.BigEndian.Uint16(r.infos[i:]))
		}
		if got := appendInfoRequest(nil, r.name, infos...); !bytes.Equal(got, b) {
			t.Fatalf("round trip % x != % x", got, b)
		}
	})
}

// byteConn is a net.Conn whose peer sends fixed bytes and ignores replies.
type byteConn struct {
	r *bytes.Reader
}

func (c *byteConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return &net.UnixAddr{} }
func (c *byteConn) RemoteAddr() net.Addr             { return &net.UnixAddr{} }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// sessionSeed is a client session: flags, options, then requests.
func sessionSeed(opts [][]byte, reqs ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, clientFixedNewstyle|clientNoZeroes)
	for _, o := range opts {
		b = append(b, o...)
	}
	for _, r := range reqs {
		b = append(b, r...)
	}
	return b
}

func opt(code uint32, data []byte) []byte {
	return append(appendOptionHeader(nil, code, uint32(len(data))), data...)
}

func req(typ, flags uint16, off uint64, length uint32, payload []byte) []byte {
	return append(appendRequest(nil, requestHeader{typ: typ, flags: flags, cookie: 1, offset: off, length: length}), payload...)
}

// FuzzServeConn feeds arbitrary client bytes through the whole server:
// handshake and transmission must end with an error or cleanly, never
// panic or hang.
func FuzzServeConn(f *testing.F) {
	f.Add(sessionSeed([][]byte{opt(optList, nil), opt(optStructuredReply, nil), opt(optGo, appendInfoRequest(nil, "disk", infoBlockSize))},
		req(cmdWrite, cmdFlagFUA, 0, 8, []byte("abcdefgh")), req(cmdRead, 0, 0, 8, nil), req(cmdDisc, 0, 0, 0, nil)))
	f.Add(sessionSeed([][]byte{opt(optExportName, []byte("disk"))},
		req(cmdTrim, 0, 0, 4096, nil), req(cmdWriteZeroes, cmdFlagNoHole|cmdFlagFastZero, 512, 512, nil), req(cmdFlush, 0, 0, 0, nil)))
	f.Add(sessionSeed([][]byte{opt(optInfo, appendInfoRequest(nil, "nope")), opt(999, []byte("x")), opt(optAbort, nil)}))
	f.Add(sessionSeed([][]byte{opt(optGo, appendInfoRequest(nil, "ro"))}, req(cmdWrite, 0, 0, 4, []byte("abcd")), req(cmdRead, 0, 1<<40, 4, nil)))
	f.Add(sessionSeed([][]byte{opt(optGo, []byte{0, 0, 0, 4})}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Server{}
		s.AddExport(&Export{Name: "disk", Backend: memory.New(1 << 20), MaxPayload: 64 << 10})
		s.AddExport(&Export{Name: "ro", Backend: memory.New(1 << 16), ReadOnly: true, MinBlockSize: 512})
		s.ServeConn(context.Background(), &byteConn{bytes.NewReader(b)})
	})
}

// FuzzServeTransmission is the kernel path: requests only.
func FuzzServeTransmission(f *testing.F) {
	f.Add(bytes.Join([][]byte{req(cmdWrite, 0, 4096, 4, []byte("abcd")), req(cmdRead, cmdFlagDF, 4096, 4, nil), req(cmdDisc, 0, 0, 0, nil)}, nil))
	f.Add(req(cmdWrite, 0, 0, 1<<20, nil))
	f.Add(req(cmdRead, 0, 1<<64-1, 2, nil))
	f.Add(bytes.Repeat([]byte{0x25, 0x60, 0x95, 0x13, 0, 0, 0, 0}, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		exp := &Export{Backend: memory.New(1 << 20), MaxPayload: 64 << 10}
		err := ServeTransmission(context.Background(), &byteConn{bytes.NewReader(b)}, exp, &Options{Workers: 2})
		if err == io.EOF {
			t.Fatal("EOF should be mapped")
		}
	})
}
