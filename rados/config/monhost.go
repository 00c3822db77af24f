package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// Default monitor ports (CEPH_MON_PORT_IANA / CEPH_MON_PORT_LEGACY).
const (
	PortV2 = 3300
	PortV1 = 6789
)

// ErrBadMonHost is wrapped by mon_host parse errors.
var ErrBadMonHost = errors.New("config: bad monitor address")

// maxMonEntries bounds the number of entries in one mon_host string.
const maxMonEntries = 64

// Mon is one monitor from a mon_host list: the text it came from and the
// msgr2 addresses to try for it, in order.
type Mon struct {
	Given string
	Addrs []entity.Addr
}

// Resolver resolves host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ParseMonHost parses a mon_host value (or a ceph-csi monitors list
// joined with commas) into monitors. Host names are resolved with r (nil:
// net.DefaultResolver); every address of a name becomes one monitor.
func ParseMonHost(ctx context.Context, s string, r Resolver) ([]Mon, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	entries, err := splitMonHost(s)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: empty monitor list", ErrBadMonHost)
	}
	var out []Mon
	for _, ent := range entries {
		mons, err := parseEntry(ctx, ent, r)
		if err != nil {
			return nil, err
		}
		out = append(out, mons...)
	}
	return dedupe(out), nil
}

// splitMonHost splits on commas, semicolons and white space outside
// brackets (an addrvec "[v2:..,v1:..]" contains commas).
func splitMonHost(s string) ([]string, error) {
	var out []string
	depth := 0
	start := -1
	flush := func(i int) {
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '[':
			depth++
			if depth > 2 {
				return nil, fmt.Errorf("%w: nested brackets in %q", ErrBadMonHost, s)
			}
		case c == ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("%w: unbalanced ']' in %q", ErrBadMonHost, s)
			}
		case depth == 0 && (c == ',' || c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			flush(i)
			continue
		}
		if start < 0 {
			start = i
		}
		if len(out) > maxMonEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrBadMonHost, maxMonEntries)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%w: unbalanced '[' in %q", ErrBadMonHost, s)
	}
	flush(len(s))
	return out, nil
}

func isAddrVec(ent string) bool {
	if !strings.HasPrefix(ent, "[") || !strings.HasSuffix(ent, "]") {
		return false
	}
	in := ent[1:]
	return strings.HasPrefix(in, "v1:") || strings.HasPrefix(in, "v2:") || strings.HasPrefix(in, "any:")
}

func parseEntry(ctx context.Context, ent string, r Resolver) ([]Mon, error) {
	if isAddrVec(ent) {
		parts := strings.Split(ent[1:len(ent)-1], ",")
		m := Mon{Given: ent}
		var v1 []entity.Addr
		for _, p := range parts {
			a, err := parseTyped(strings.TrimSpace(p))
			if err != nil {
				return nil, err
			}
			switch a.Type {
			case entity.AddrMsgr2:
				m.Addrs = append(m.Addrs, a)
			default:
				v1 = append(v1, a)
			}
		}
		if len(m.Addrs) == 0 { // a v1-only addrvec: guess v2 on the same host
			for _, a := range v1 {
				m.Addrs = append(m.Addrs, v2Guess(a.IP.Addr(), a.Nonce))
			}
		}
		return []Mon{m}, nil
	}
	if strings.HasPrefix(ent, "v1:") || strings.HasPrefix(ent, "v2:") || strings.HasPrefix(ent, "any:") {
		a, err := parseTyped(ent)
		if err != nil {
			return nil, err
		}
		if a.Type != entity.AddrMsgr2 {
			a = v2Guess(a.IP.Addr(), a.Nonce)
		}
		return []Mon{{Given: ent, Addrs: []entity.Addr{a}}}, nil
	}
	host, port, err := splitHostPort(ent)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		if !validHostname(host) {
			return nil, fmt.Errorf("%w: %q is neither an IP address nor a host name", ErrBadMonHost, ent)
		}
		ips, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("%w: resolving %q: %v", ErrBadMonHost, host, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("%w: %q has no addresses", ErrBadMonHost, host)
		}
	}
	var out []Mon
	for _, ip := range ips {
		ip = ip.Unmap()
		var a entity.Addr
		switch port {
		case 0, PortV2, PortV1:
			// no port, the v2 port, or the legacy port: the v2 port of
			// that host (for 6789 this is a guess; monitors bind both).
			a = entity.Addr{Type: entity.AddrMsgr2, IP: netip.AddrPortFrom(ip, PortV2)}
		default:
			a = entity.Addr{Type: entity.AddrMsgr2, IP: netip.AddrPortFrom(ip, uint16(port))}
		}
		out = append(out, Mon{Given: ent, Addrs: []entity.Addr{a}})
	}
	return out, nil
}

func v2Guess(ip netip.Addr, nonce uint32) entity.Addr {
	return entity.Addr{Type: entity.AddrMsgr2, Nonce: nonce, IP: netip.AddrPortFrom(ip, PortV2)}
}

// parseTyped parses "v2:ip[:port][/nonce]" with a default port per type.
func parseTyped(s string) (entity.Addr, error) {
	typ, rest, _ := strings.Cut(s, ":")
	var a entity.Addr
	switch typ {
	case "v2", "any":
		a.Type = entity.AddrMsgr2
	case "v1":
		a.Type = entity.AddrLegacy
	default:
		return a, fmt.Errorf("%w: unknown address type in %q", ErrBadMonHost, s)
	}
	rest, nonce, ok := entity.CutNonce(rest)
	if !ok {
		return a, fmt.Errorf("%w: bad nonce in %q", ErrBadMonHost, s)
	}
	a.Nonce = nonce
	host, port, err := splitHostPort(rest)
	if err != nil {
		return a, err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return a, fmt.Errorf("%w: %q: typed addresses need an IP address", ErrBadMonHost, s)
	}
	if port == 0 {
		port = PortV2
		if a.Type == entity.AddrLegacy {
			port = PortV1
		}
	}
	a.IP = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	return a, nil
}

// splitHostPort splits "host", "host:port", "[v6]", "[v6]:port" or a bare
// IPv6 address; port is 0 when absent.
func splitHostPort(s string) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf("%w: empty address", ErrBadMonHost)
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("%w: %q", ErrBadMonHost, s)
		}
		host := s[1:end]
		rest := s[end+1:]
		if rest == "" {
			return host, 0, nil
		}
		if rest[0] != ':' {
			return "", 0, fmt.Errorf("%w: %q", ErrBadMonHost, s)
		}
		p, err := parsePort(rest[1:], s)
		return host, p, err
	}
	if strings.Count(s, ":") > 1 { // bare IPv6 without port
		return s, 0, nil
	}
	host, ps, ok := strings.Cut(s, ":")
	if !ok {
		return s, 0, nil
	}
	if host == "" {
		return "", 0, fmt.Errorf("%w: %q has no host", ErrBadMonHost, s)
	}
	p, err := parsePort(ps, s)
	return host, p, err
}

func parsePort(ps, whole string) (int, error) {
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%w: bad port in %q", ErrBadMonHost, whole)
	}
	return int(p), nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func dedupe(ms []Mon) []Mon {
	seen := map[string]bool{}
	out := ms[:0]
	for _, m := range ms {
		k := fmt.Sprint(m.Addrs)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, m)
	}
	return out
}
