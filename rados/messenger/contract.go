package messenger

// This file is the contract between the messenger and its users (cephx
// implements AuthClient; mon and osd use Conn). Keep signatures stable;
// extend by adding fields and methods.

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
)

// Connection modes negotiated in AUTH_DONE (CEPH_CON_MODE_*).
const (
	ModeCRC    uint32 = 1
	ModeSecure uint32 = 2
)

// AuthClient drives the client side of the msgr2 authentication exchange for
// one connection attempt. The messenger calls AuthRequest once, then
// HandleReplyMore for each AUTH_REPLY_MORE, then HandleDone on AUTH_DONE.
// Implementations live in cephx (and a trivial one for auth "none").
type AuthClient interface {
	// AuthRequest returns the AUTH_REQUEST contents: the auth method
	// (CEPH_AUTH_CEPHX = 2), the connection modes we accept in order of
	// preference, and the method-specific payload.
	AuthRequest() (method uint32, modes []uint32, payload []byte, err error)
	// HandleReplyMore consumes an AUTH_REPLY_MORE payload and returns the
	// payload of the AUTH_REQUEST_MORE to send.
	HandleReplyMore(payload []byte) ([]byte, error)
	// HandleDone consumes AUTH_DONE and returns the session key bytes used
	// as the HMAC-SHA256 key for AUTH_SIGNATURE and the connection secret
	// (AES-128-GCM key and nonces in secure mode; may be empty in crc mode).
	HandleDone(globalID uint64, conMode uint32, payload []byte) (sessionKey, conSecret []byte, err error)
	// HandleBadMethod is called on AUTH_BAD_METHOD. It returns an error
	// (the messenger gives up on this attempt) that should name what the
	// server allows.
	HandleBadMethod(method uint32, result int32, allowedMethods, allowedModes []uint32) error
}

// Message is a Ceph message as carried by a msgr2 MESSAGE frame.
type Message struct {
	Type          uint16
	Version       uint16
	CompatVersion uint16
	Priority      uint16 // 0 means the default (127)
	Tid           uint64
	Seq           uint64 // set by the messenger
	Flags         uint8
	// DataOff is the data offset hint of the header (the kernel sets the
	// object offset of a write so the receiver can align its buffer).
	DataOff uint16
	Front   []byte
	Middle  []byte
	Data    []byte
}

// Config configures one client connection.
type Config struct {
	// Addr is the msgr2 address to dial (type v2, with the peer's nonce).
	Addr entity.Addr
	// PeerType is the entity type we expect (mon, osd, mgr); checked in HELLO.
	PeerType entity.Type
	// Auth drives authentication for this connection attempt.
	Auth AuthClient
	// Features are the RADOS feature bits we support; Required those the
	// peer must support.
	Features, Required uint64
	// GlobalID is our global id once known (0 before the first mon auth);
	// sent in CLIENT_IDENT.
	GlobalID uint64
	// GlobalSeq supplies a per-client monotonically increasing global_seq
	// for CLIENT_IDENT. If nil the messenger uses a process-wide counter.
	GlobalSeq func() uint64
	// Dispatch is called from the connection's reader goroutine for every
	// incoming message, in order. It must not block for long.
	Dispatch func(*Message)
	// RxBuffer, if set, is asked (from the reader goroutine, in crc mode)
	// where to receive the n-byte data segment of an incoming message of
	// type typ and transaction id tid, before that segment is read: it
	// returns a buffer of exactly n bytes, or nil for a fresh allocation.
	// release, if not nil, is called once the reader stops writing into the
	// buffer (the message is complete or the connection failed); the
	// message's Data then aliases the buffer. It lets the OSD client
	// receive read replies straight into the caller's memory.
	RxBuffer func(typ uint16, tid uint64, n int) (buf []byte, release func())
	// OnFault is called once when the connection fails after being opened
	// (read/write error, peer reset, keepalive timeout). Not called after Close.
	OnFault func(error)
	// KeepaliveInterval is how often KEEPALIVE2 is sent (0: 10s).
	KeepaliveInterval time.Duration
	// KeepaliveTimeout: fault the connection when nothing was received for
	// this long (0: 30s).
	KeepaliveTimeout time.Duration

	// Nonce is the nonce of our entity address (sent in CLIENT_IDENT). Use
	// one random non-zero value per client instance so that all its
	// connections share one address; 0 picks a random nonce for this
	// connection.
	Nonce uint32
	// Limits bound the segment lengths the peer may send (zero fields:
	// 16 MiB control/front/middle, 64 MiB data).
	Limits msgr2.Limits

	// Dialer opens the TCP connection to address ("host:port"); nil uses
	// a net.Dialer. It lets callers bind a source address, add socket
	// options or observe the raw bytes (wire captures in tests).
	Dialer func(ctx context.Context, network, address string) (net.Conn, error)

	// hooks are test seams (nil in production).
	hooks *hooks
}

// PeerInfo is what the server told us during the handshake.
type PeerInfo struct {
	Addrs    entity.AddrVec // the server's addrvec from SERVER_IDENT
	GlobalID int64          // the server's gid (e.g. OSD id for OSDs)
	Features uint64         // the server's supported RADOS features
	Lossy    bool
	ConMode  uint32      // ModeCRC or ModeSecure
	MyAddr   entity.Addr // our address as the peer sees it (from HELLO)
}

// Sentinel errors. Errors returned by Dial wrap one of these (or a
// net/context error) so callers can tell them apart with errors.Is.
var (
	ErrClosed          = errors.New("messenger: connection closed")
	ErrProtocol        = errors.New("messenger: protocol error")
	ErrNotMsgr2        = errors.New("messenger: peer does not speak msgr2")
	ErrMissingFeatures = errors.New("messenger: peer requires features we lack")
	ErrWrongPeer       = errors.New("messenger: wrong peer at address")
	ErrAuth            = errors.New("messenger: authentication failed")
	ErrKeepalive       = errors.New("messenger: keepalive timeout")
)
