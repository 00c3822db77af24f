package messenger

// Temporary stub so that users of the contract compile while the messenger
// is being written. The messenger implementation replaces this file
// (delete it when conn.go lands).

import (
	"context"
	"errors"
)

// Conn is one msgr2.1 client connection: one reader and one writer goroutine.
type Conn struct{}

// Dial connects, negotiates the banner, HELLO, authentication (via
// cfg.Auth), AUTH_SIGNATURE and CLIENT_IDENT/SERVER_IDENT, and returns an
// open connection. Errors name the address dialled.
func Dial(ctx context.Context, cfg Config) (*Conn, error) {
	return nil, errors.New("messenger: not implemented")
}

// Send queues m for sending; it returns when m is queued, the connection
// fails (ErrClosed or the fault) or ctx ends. The messenger assigns Seq.
func (c *Conn) Send(ctx context.Context, m *Message) error { return ErrClosed }

// Peer returns what the server told us in the handshake.
func (c *Conn) Peer() PeerInfo { return PeerInfo{} }

// Done is closed when the connection has failed or been closed.
func (c *Conn) Done() <-chan struct{} { return nil }

// Err returns the fault that ended the connection (nil while open, ErrClosed after Close).
func (c *Conn) Err() error { return nil }

// Close shuts the connection down; it does not call OnFault.
func (c *Conn) Close() error { return nil }
