package nbd

import (
	"context"
	"sync"
)

// Gate pauses an export: while paused, requests are held before they
// reach the backend (the kernel or client waits; nothing fails), and
// Pause returns once the requests already at the backend have finished,
// so the backend is quiet until Resume. A snapshot of the backend taken
// in between sees every write that completed and none that did not.
//
// Share one Gate between every connection and Export value that serve
// the same device, as with Limiter. Pauses nest: the gate opens at the
// Resume matching the first Pause. The zero Gate is open.
type Gate struct {
	mu      sync.Mutex
	pauses  int           // Pause calls not yet matched by Resume
	active  int           // requests past the gate, not yet finished
	resumed chan struct{} // closed by the last Resume; nil while open
	idle    chan struct{} // closed when active drops to 0; nil when nobody waits
}

// Pause closes the gate and waits until no request is at the backend.
// When ctx ends first, the gate stays closed and ctx's error is
// returned: the caller still calls Resume.
func (g *Gate) Pause(ctx context.Context) error {
	g.mu.Lock()
	g.pauses++
	if g.resumed == nil {
		g.resumed = make(chan struct{})
	}
	if g.active == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Resume undoes one Pause; the last lets the held requests go.
func (g *Gate) Resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pauses == 0 {
		return
	}
	g.pauses--
	if g.pauses == 0 {
		close(g.resumed)
		g.resumed = nil
	}
}

// Paused reports whether the gate is closed.
func (g *Gate) Paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pauses > 0
}

// enter waits until the gate is open and counts the request in; false
// when ctx ends first (the connection is going away).
func (g *Gate) enter(ctx context.Context) bool {
	g.mu.Lock()
	for g.resumed != nil {
		ch := g.resumed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		g.mu.Lock()
	}
	g.active++
	g.mu.Unlock()
	return true
}

// leave counts a request out.
func (g *Gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if g.active == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// gated executes r once the export's Gate (if any) lets it through.
func (c *conn) gated(r *request) error {
	g := c.exp.Gate
	if g == nil {
		return c.execute(r)
	}
	if !g.enter(c.bctx) {
		return context.Cause(c.bctx)
	}
	defer g.leave()
	return c.execute(r)
}
