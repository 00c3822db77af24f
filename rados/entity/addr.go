package entity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// AddrType is the entity_addr_t type field.
type AddrType uint32

// Address types.
const (
	AddrNone   AddrType = 0
	AddrLegacy AddrType = 1 // msgr v1
	AddrMsgr2  AddrType = 2 // msgr v2
	AddrAny    AddrType = 3
	AddrCIDR   AddrType = 4
)

func (t AddrType) String() string {
	switch t {
	case AddrNone:
		return "none"
	case AddrLegacy:
		return "v1"
	case AddrMsgr2:
		return "v2"
	case AddrAny:
		return "any"
	case AddrCIDR:
		return "cidr"
	}
	return fmt.Sprintf("addrtype%d", uint32(t))
}

const (
	afInet  = 2
	afInet6 = 10
)

// Addr is an entity_addr_t: a typed socket address with a nonce.
// A zero AddrPort means "no address" (blank).
type Addr struct {
	Type  AddrType
	Nonce uint32
	IP    netip.AddrPort
}

// IsBlank reports whether the address carries no IP.
func (a Addr) IsBlank() bool { return !a.IP.Addr().IsValid() }

// String formats like Ceph: v2:127.0.0.1:3300/0.
func (a Addr) String() string {
	if a.IsBlank() {
		return fmt.Sprintf("%s:-/%d", a.Type, a.Nonce)
	}
	return fmt.Sprintf("%s:%s/%d", a.Type, a.IP, a.Nonce)
}

// HostPort formats the address as host:port for net.Dial.
func (a Addr) HostPort() string { return a.IP.String() }

// Equal compares type, nonce and socket address.
func (a Addr) Equal(b Addr) bool {
	return a.Type == b.Type && a.Nonce == b.Nonce && a.IP == b.IP
}

// ErrBadAddr is wrapped by address parse and decode errors.
var ErrBadAddr = errors.New("entity: bad address")

// Encode appends the msgr2-era encoding of a (marker 1, versioned v1 struct).
func (a Addr) Encode(e *encoding.Encoder) {
	e.U8(1) // marker: new encoding
	m := e.StructBegin(1, 1)
	e.U32(uint32(a.Type))
	e.U32(a.Nonce)
	sa := a.sockaddr()
	e.Bytes32(sa)
	e.StructEnd(m)
}

// sockaddr renders a sockaddr_in/sockaddr_in6 with a little-endian family
// and network-order port and address, as Ceph puts on the wire.
func (a Addr) sockaddr() []byte {
	if a.IsBlank() {
		return nil
	}
	ip := a.IP.Addr()
	if ip.Is4() || ip.Is4In6() {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b[0:], afInet)
		binary.BigEndian.PutUint16(b[2:], a.IP.Port())
		v4 := ip.Unmap().As4()
		copy(b[4:8], v4[:])
		return b
	}
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b[0:], afInet6)
	binary.BigEndian.PutUint16(b[2:], a.IP.Port())
	v6 := ip.As16()
	copy(b[8:24], v6[:])
	binary.BigEndian.PutUint32(b[24:], uint32(zoneIndex(ip.Zone())))
	return b
}

func zoneIndex(z string) int {
	if z == "" {
		return 0
	}
	if n, err := strconv.Atoi(z); err == nil {
		return n
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return ifi.Index
	}
	return 0
}

// DecodeAddr decodes an entity_addr_t in either the msgr2-era encoding
// (marker 1) or the legacy one (marker 0, 136 bytes, big-endian family).
func DecodeAddr(d *encoding.Decoder) Addr {
	marker := d.U8()
	if d.Err() != nil {
		return Addr{}
	}
	switch marker {
	case 0:
		// legacy: the marker byte is the low byte of a u32 type that is
		// always 0, followed by u32 nonce and a 128-byte sockaddr_storage whose
		// family is big-endian.
		d.Skip(3)
		var a Addr
		a.Type = AddrLegacy
		a.Nonce = d.U32()
		ss := d.Raw(128)
		if ss == nil {
			return Addr{}
		}
		fam := binary.BigEndian.Uint16(ss[0:2])
		a.IP = decodeSockaddr(d, fam, ss)
		return a
	case 1:
		s, _ := d.Struct(1)
		var a Addr
		a.Type = AddrType(s.U32())
		a.Nonce = s.U32()
		sa := s.Bytes()
		if s.Err() != nil {
			return Addr{}
		}
		if len(sa) >= 2 {
			fam := binary.LittleEndian.Uint16(sa[0:2])
			a.IP = decodeSockaddr(d, fam, sa)
		}
		return a
	default:
		d.Fail("entity_addr", fmt.Errorf("%w: marker %d", ErrBadAddr, marker))
		return Addr{}
	}
}

func decodeSockaddr(d *encoding.Decoder, fam uint16, sa []byte) netip.AddrPort {
	switch fam {
	case 0:
		return netip.AddrPort{}
	case afInet:
		if len(sa) < 8 {
			d.Fail("sockaddr_in", ErrBadAddr)
			return netip.AddrPort{}
		}
		port := binary.BigEndian.Uint16(sa[2:4])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port)
	case afInet6:
		if len(sa) < 24 {
			d.Fail("sockaddr_in6", ErrBadAddr)
			return netip.AddrPort{}
		}
		port := binary.BigEndian.Uint16(sa[2:4])
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port)
	default:
		d.Fail("sockaddr", fmt.Errorf("%w: family %d", ErrBadAddr, fam))
		return netip.AddrPort{}
	}
}

// AddrVec is an entity_addrvec_t.
type AddrVec []Addr

// Encode appends the addrvec encoding (marker 2, count, addrs).
func (v AddrVec) Encode(e *encoding.Encoder) {
	e.U8(2)
	e.U32(uint32(len(v)))
	for _, a := range v {
		a.Encode(e)
	}
}

// DecodeAddrVec decodes an entity_addrvec_t, also accepting a bare legacy or
// new-style entity_addr_t (markers 0 and 1), which Ceph treats as a vector of one.
func DecodeAddrVec(d *encoding.Decoder) AddrVec {
	peek := d.Peek(1)
	if peek == nil {
		d.Fail("entity_addrvec", encoding.ErrShort)
		return nil
	}
	switch peek[0] {
	case 0, 1:
		a := DecodeAddr(d)
		if d.Err() != nil {
			return nil
		}
		return AddrVec{a}
	case 2:
		d.Skip(1)
		n := d.Count(1)
		v := make(AddrVec, 0, n)
		for i := 0; i < n && d.Err() == nil; i++ {
			v = append(v, DecodeAddr(d))
		}
		return v
	default:
		d.Fail("entity_addrvec", fmt.Errorf("%w: marker %d", ErrBadAddr, peek[0]))
		return nil
	}
}

// Msgr2 returns the first msgr2 address of v.
func (v AddrVec) Msgr2() (Addr, bool) {
	for _, a := range v {
		if a.Type == AddrMsgr2 {
			return a, true
		}
	}
	return Addr{}, false
}

func (v AddrVec) String() string {
	parts := make([]string, len(v))
	for i, a := range v {
		parts[i] = a.String()
	}
	if len(v) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// CutNonce splits the "/nonce" suffix off an address ("1.2.3.4:3300/7"):
// it returns the rest and the nonce (0 without a suffix), and false when
// the suffix is not a 32-bit decimal number.
func CutNonce(s string) (rest string, nonce uint32, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return s, 0, true
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 32)
	if err != nil {
		return s, 0, false
	}
	return s[:i], uint32(n), true
}

// ParseAddr parses one typed address as Ceph prints it: "v2:1.2.3.4:3300/0",
// "v1:[::1]:6789/123", "any:1.2.3.4:0/5". The type prefix is required.
func ParseAddr(s string) (Addr, error) {
	var a Addr
	typ, rest, ok := strings.Cut(s, ":")
	if !ok {
		return a, fmt.Errorf("%w: %q has no type prefix", ErrBadAddr, s)
	}
	switch typ {
	case "v1":
		a.Type = AddrLegacy
	case "v2":
		a.Type = AddrMsgr2
	case "any":
		a.Type = AddrAny
	case "none":
		a.Type = AddrNone
	default:
		return a, fmt.Errorf("%w: unknown type %q in %q", ErrBadAddr, typ, s)
	}
	hp, nonce, ok := CutNonce(rest)
	if !ok {
		return a, fmt.Errorf("%w: nonce in %q", ErrBadAddr, s)
	}
	a.Nonce = nonce
	ap, err := netip.ParseAddrPort(hp)
	if err != nil {
		return a, fmt.Errorf("%w: %q: %v", ErrBadAddr, s, err)
	}
	a.IP = ap
	return a, nil
}
