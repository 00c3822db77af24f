package nbd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"syscall"
	"time"
)

// Options tune one connection's transmission phase. The zero value gives
// the defaults.
type Options struct {
	// Workers is the number of requests of one connection executed
	// concurrently. Default 16.
	Workers int
	// MaxInFlight bounds the payload bytes (read buffers and write
	// payloads) held by the requests of one connection; the server stops
	// reading requests while it is reached. A single request larger than
	// the bound is still served, alone. Default 64 MiB.
	MaxInFlight int64
	// DrainTimeout bounds how long a connection keeps finishing in-flight
	// requests and sending their replies after its context is cancelled;
	// then the backend context is cancelled and the connection closed.
	// Default 30s.
	DrainTimeout time.Duration
	// Structured selects structured replies in ServeTransmission (the
	// handshake sets it when the client negotiated them). The kernel
	// needs simple replies.
	Structured bool
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Workers <= 0 {
		r.Workers = 16
	}
	if r.MaxInFlight <= 0 {
		r.MaxInFlight = 64 << 20
	}
	if r.DrainTimeout <= 0 {
		r.DrainTimeout = 30 * time.Second
	}
	return r
}

// Server serves named exports over the full NBD protocol (fixed newstyle
// handshake, then transmission). Set the fields before the first Serve;
// exports may be added and removed at any time.
type Server struct {
	// Options apply to every connection's transmission phase.
	Options Options
	// HandshakeTimeout bounds the handshake of one connection. Default 30s.
	HandshakeTimeout time.Duration
	// DefaultExport is the export a client gets when it asks for the empty
	// name; empty means only an export named "" matches.
	DefaultExport string
	// MaxConnsPerExport caps the connections using one export at once,
	// counted from the client's choice of it (NBD_OPT_GO or
	// NBD_OPT_EXPORT_NAME) to the end of the session. A client choosing
	// an export at its cap gets NBD_REP_ERR_POLICY (NBD_OPT_EXPORT_NAME,
	// which has no error reply: the connection is closed). 0: no cap.
	MaxConnsPerExport int
	// MaxInFlightPerExport bounds the payload bytes held by the requests
	// of all connections of one export together, on top of each
	// connection's Options.MaxInFlight: the connections stop reading
	// requests while it is reached. A single request larger than the
	// bound is still served, alone. 0: no bound.
	MaxInFlightPerExport int64

	// mu guards exports and inUse (and the conns counts in inUse).
	mu      sync.RWMutex
	exports map[string]*Export
	inUse   map[*Export]*exportUse
}

// exportUse is what the connections of one export share: their count and
// their in-flight budget. It lives while a connection uses the export.
type exportUse struct {
	exp    *Export
	conns  int       // guarded by Server.mu
	budget *inflight // nil without MaxInFlightPerExport
}

// claim counts a new connection of exp; nil when exp is at its cap.
func (s *Server) claim(exp *Export) *exportUse {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.inUse[exp]
	if u == nil {
		u = &exportUse{exp: exp}
		if s.MaxInFlightPerExport > 0 {
			u.budget = newInflight(s.MaxInFlightPerExport)
		}
	}
	if s.MaxConnsPerExport > 0 && u.conns >= s.MaxConnsPerExport {
		return nil
	}
	if s.inUse == nil {
		s.inUse = make(map[*Export]*exportUse)
	}
	s.inUse[exp] = u
	u.conns++
	return u
}

// release ends a connection's claim (nil: none).
func (s *Server) release(u *exportUse) {
	if u == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.conns--; u.conns == 0 {
		delete(s.inUse, u.exp)
	}
}

// AddExport validates e and makes it available to new connections under
// e.Name, replacing any export of that name.
func (s *Server) AddExport(e *Export) error {
	if err := e.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exports == nil {
		s.exports = make(map[string]*Export)
	}
	s.exports[e.Name] = e
	return nil
}

// RemoveExport stops offering the named export to new connections;
// connections already using it are not affected.
func (s *Server) RemoveExport(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.exports, name)
}

func (s *Server) lookup(name string) *Export {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := s.exports[name]; ok {
		return e
	}
	if name == "" && s.DefaultExport != "" {
		return s.exports[s.DefaultExport]
	}
	return nil
}

func (s *Server) list() []*Export {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := make([]*Export, 0, len(s.exports))
	for _, e := range s.exports {
		l = append(l, e)
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

// Serve accepts connections on l and serves each in its own goroutine
// until ctx is cancelled. Then it closes l, lets every connection finish
// its in-flight requests (see [Options.DrainTimeout]) and returns nil once
// they are all closed. It returns early with the error of a failed Accept.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !retryAccept(err) {
				return fmt.Errorf("nbd: accept: %w", err)
			}
			// Out of file descriptors and the like: wait a little, like
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Per-connection errors are the client's problem; the server
			// keeps going.
			_ = s.ServeConn(ctx, c)
		}()
	}
}

func retryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// ServeConn runs the handshake and then the transmission phase on c, and
// closes c when done. It returns nil when the client disconnected cleanly
// (NBD_CMD_DISC or EOF between requests) or ctx was cancelled,
// [ErrAborted] after NBD_OPT_ABORT, and otherwise the error that ended the
// session (a [*ProtocolError] for protocol violations).
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	use, structured, err := s.handshake(ctx, c, br, bw)
	if err != nil {
		return err
	}
	defer s.release(use)
	opts := s.Options.withDefaults()
	opts.Structured = structured
	cn := newConn(c, br, bw, use.exp, opts)
	cn.shared = use.budget
	return cn.run(ctx)
}

// ServeTransmission serves exp on c starting directly in the transmission
// phase, with no handshake: the peer must already know the export size and
// flags (the kernel learns them over netlink; see [Export.TransmissionFlags]).
// It closes c when done and returns like [Server.ServeConn]. opts may be
// nil; opts.Structured selects structured replies (the kernel needs simple
// ones).
func ServeTransmission(ctx context.Context, c net.Conn, exp *Export, opts *Options) error {
	defer c.Close()
	if err := exp.Validate(); err != nil {
		return err
	}
	o := opts.withDefaults()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	return newConn(c, br, bw, exp, o).run(ctx)
}
