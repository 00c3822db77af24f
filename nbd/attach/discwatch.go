package attach

import (
	"encoding/binary"
	"net"
	"sync/atomic"
)

// discWatch wraps the server's end of a kernel connection and follows the
// request stream (28-byte headers, write payloads) to notice NBD_CMD_DISC.
// The server returns nil both for DISC and for EOF between requests; only
// DISC means the kernel is disconnecting the device, while a bare EOF means
// the kernel dropped the socket (request timeout) and wants a new one.
type discWatch struct {
	net.Conn
	hdr     [28]byte
	have    int    // header bytes seen so far
	payload uint64 // write payload bytes still to skip
	sawDisc atomic.Bool
}

const (
	requestMagic = 0x25609513
	cmdWrite     = 1
	cmdDisc      = 2
)

func (d *discWatch) Read(p []byte) (int, error) {
	n, err := d.Conn.Read(p)
	d.follow(p[:n])
	return n, err
}

func (d *discWatch) follow(b []byte) {
	for len(b) > 0 {
		if d.payload > 0 {
			k := min(uint64(len(b)), d.payload)
			d.payload -= k
			b = b[k:]
			continue
		}
		k := copy(d.hdr[d.have:], b)
		d.have += k
		b = b[k:]
		if d.have < len(d.hdr) {
			return
		}
		d.have = 0
		if binary.BigEndian.Uint32(d.hdr[0:]) != requestMagic {
			return // lost framing; the server will fail the connection
		}
		switch binary.BigEndian.Uint16(d.hdr[6:]) {
		case cmdWrite:
			d.payload = uint64(binary.BigEndian.Uint32(d.hdr[24:]))
		case cmdDisc:
			d.sawDisc.Store(true)
		}
	}
}
