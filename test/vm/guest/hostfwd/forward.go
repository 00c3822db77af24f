package hostfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHost is the host's loopback as qemu's user network shows it to
// the guest.
const DefaultHost = "10.0.2.2"

// maxPorts bounds one forwarder; a Ceph test cluster uses about 50.
const maxPorts = 1024

// ErrPorts is returned for a malformed or oversized port list.
var ErrPorts = errors.New("hostfwd: bad port list")

// Config says where to listen and where to relay to.
type Config struct {
	ListenHost  string        // "" = 127.0.0.1
	TargetHost  string        // "" = DefaultHost
	Ports       []int         // the same port on both sides
	DialTimeout time.Duration // 0 = 10s
}

// Stats counts the forwarder's work since Start.
type Stats struct {
	Accepted   int64 // connections accepted on the listen side
	DialFailed int64 // of those, how many the target refused or timed out
	Active     int64 // relays running now
	BytesOut   int64 // guest -> host
	BytesIn    int64 // host -> guest
}

// Forwarder relays TCP connections from ListenHost:PORT to TargetHost:PORT.
type Forwarder struct {
	cfg       Config
	listeners []net.Listener
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted, dialFailed, active, out, in atomic.Int64
}

// Start listens on every port and relays until ctx ends or Close is
// called. It fails (and listens on nothing) if any port cannot be bound.
func Start(ctx context.Context, cfg Config) (*Forwarder, error) {
	if cfg.ListenHost == "" {
		cfg.ListenHost = "127.0.0.1"
	}
	if cfg.TargetHost == "" {
		cfg.TargetHost = DefaultHost
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if len(cfg.Ports) == 0 || len(cfg.Ports) > maxPorts {
		return nil, fmt.Errorf("%w: %d ports", ErrPorts, len(cfg.Ports))
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Forwarder{cfg: cfg, cancel: cancel, conns: map[net.Conn]struct{}{}}
	var lc net.ListenConfig
	for _, p := range cfg.Ports {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(cfg.ListenHost, strconv.Itoa(p)))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("hostfwd: %w", err)
		}
		f.listeners = append(f.listeners, l)
	}
	for _, l := range f.listeners {
		f.wg.Add(1)
		go f.accept(ctx, l)
	}
	go func() {
		<-ctx.Done()
		f.closeAll()
	}()
	return f, nil
}

// Close stops listening, cuts every relay and waits for them to end.
func (f *Forwarder) Close() error {
	f.cancel()
	f.closeAll()
	f.wg.Wait()
	return nil
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{
		Accepted:   f.accepted.Load(),
		DialFailed: f.dialFailed.Load(),
		Active:     f.active.Load(),
		BytesOut:   f.out.Load(),
		BytesIn:    f.in.Load(),
	}
}

// Ports returns the ports being forwarded.
func (f *Forwarder) Ports() []int { return append([]int(nil), f.cfg.Ports...) }

func (f *Forwarder) closeAll() {
	for _, l := range f.listeners {
		l.Close()
	}
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
}

// track registers c so Close can cut it; false when already closing.
func (f *Forwarder) track(c net.Conn, ctx context.Context) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	c.Close()
}

func (f *Forwarder) accept(ctx context.Context, l net.Listener) {
	defer f.wg.Done()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	target := net.JoinHostPort(f.cfg.TargetHost, port)
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary (EMFILE and the like): back off briefly, bounded
			// by the context.
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		f.accepted.Add(1)
		if !f.track(c, ctx) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go f.relay(ctx, c, target)
	}
}

func (f *Forwarder) relay(ctx context.Context, c net.Conn, target string) {
	defer f.wg.Done()
	defer f.untrack(c)
	dctx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
	var d net.Dialer
	h, err := d.DialContext(dctx, "tcp", target)
	cancel()
	if err != nil {
		// The guest sees a reset, as if the port were closed.
		f.dialFailed.Add(1)
		return
	}
	if !f.track(h, ctx) {
		h.Close()
		return
	}
	defer f.untrack(h)
	f.active.Add(1)
	defer f.active.Add(-1)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, n *atomic.Int64) {
		w, err := io.Copy(dst, src)
		n.Add(w)
		if err != nil {
			// A reset or a failed write: cut both sides, so the peer
			// sees the failure as it would without the relay.
			dst.Close()
			src.Close()
		} else if tc, ok := dst.(*net.TCPConn); ok {
			// EOF: half-close so the far side sees it but may still
			// answer.
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(h, c, &f.out)
	go pipe(c, h, &f.in)
	<-done
	<-done
}

// ParsePorts reads "7500-7549,7600" into a sorted, de-duplicated list.
func ParsePorts(s string) ([]int, error) {
	seen := map[int]bool{}
	var ports []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
		}
		if b < a || b-a >= maxPorts {
			return nil, fmt.Errorf("%w: range %q", ErrPorts, part)
		}
		for p := a; p <= b; p++ {
			if !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
		if len(ports) > maxPorts {
			return nil, fmt.Errorf("%w: more than %d ports", ErrPorts, maxPorts)
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrPorts)
	}
	slices.Sort(ports)
	return ports, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%w: port %q", ErrPorts, s)
	}
	return p, nil
}
