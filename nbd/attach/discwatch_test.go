package attach

import (
	"encoding/binary"
	"net"
	"testing"
)

// request encodes an NBD request header (doc/proto.md "Request message").
func request(typ uint16, length uint32) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint32(b[0:], requestMagic)
	binary.BigEndian.PutUint16(b[6:], typ)
	binary.BigEndian.PutUint32(b[24:], length)
	return b
}

func TestDiscWatch(t *testing.T) {
	// A write whose payload contains a DISC request must not count.
	payload := append(request(cmdDisc, 0), make([]byte, 100)...)
	var stream []byte
	stream = append(stream, request(0, 4096)...) // read
	stream = append(stream, request(cmdWrite, uint32(len(payload)))...)
	stream = append(stream, payload...)
	stream = append(stream, request(3, 0)...) // flush
	for split := 1; split <= len(stream); split++ {
		d := &discWatch{}
		for b := stream; len(b) > 0; {
			n := min(split, len(b))
			d.follow(b[:n])
			b = b[n:]
		}
		if d.sawDisc.Load() {
			t.Fatalf("split %d: DISC seen inside a write payload", split)
		}
		d.follow(request(cmdDisc, 0))
		if !d.sawDisc.Load() {
			t.Fatalf("split %d: DISC missed", split)
		}
	}
}

func TestDiscWatchConn(t *testing.T) {
	a, b := net.Pipe()
	d := &discWatch{Conn: a}
	go func() {
		b.Write(request(cmdDisc, 0))
		b.Close()
	}()
	buf := make([]byte, 64)
	for {
		if _, err := d.Read(buf); err != nil {
			break
		}
	}
	if !d.sawDisc.Load() {
		t.Error("DISC missed through Read")
	}
}

func FuzzDiscWatch(f *testing.F) {
	f.Add(append(request(cmdWrite, 3), 1, 2, 3))
	f.Add(request(cmdDisc, 0))
	f.Add([]byte{0x25, 0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &discWatch{}
		d.follow(b)
		d.follow(b)
	})
}
