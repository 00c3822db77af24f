package messenger

import (
	"net"
	"time"
)

// clock abstracts time for the keepalive logic so tests can drive it
// without sleeping.
type clock interface {
	Now() time.Time
	// Ticker returns a channel that delivers ticks every d and a stop func.
	Ticker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Ticker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// hooks are seams for this package's tests.
type hooks struct {
	clock clock                   // nil: real clock
	wrap  func(net.Conn) net.Conn // wraps the dialled connection
	event func(string)            // "keepalive_ack", "keepalive_sent"
}

func (c *Conn) event(name string) {
	if h := c.cfg.hooks; h != nil && h.event != nil {
		h.event(name)
	}
}
