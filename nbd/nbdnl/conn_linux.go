//go:build linux

package nbdnl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// Conn is a generic netlink connection bound to the kernel's "nbd" family.
// It is safe for concurrent use; requests are serialised.
type Conn struct {
	mu     sync.Mutex
	c      *genetlink.Conn
	family uint16
}

// Dial opens a netlink socket and resolves the "nbd" family. If the family
// is missing it runs `modprobe nbd` once and looks again; if it is still
// missing the error satisfies errors.Is(err, ErrNotSupported).
func Dial(ctx context.Context) (*Conn, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, &NotSupportedError{Reason: "cannot open a generic netlink socket", Err: err}
	}
	fam, err := c.GetFamily(familyName)
	if errors.Is(err, os.ErrNotExist) {
		out, merr := modprobe(ctx)
		fam, err = c.GetFamily(familyName)
		if errors.Is(err, os.ErrNotExist) {
			c.Close()
			reason := `no generic netlink family "nbd" (nbd.ko not loaded)`
			if merr != nil {
				reason += "; modprobe nbd failed: " + strings.TrimSpace(out)
			}
			if !haveDevices() {
				reason += "; no /dev/nbd* devices"
			}
			return nil, &NotSupportedError{Reason: reason, Err: merr}
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("nbdnl: resolve generic netlink family %q: %w", familyName, err)
	}
	if fam.Version < familyVersion {
		c.Close()
		return nil, &NotSupportedError{Reason: fmt.Sprintf("nbd netlink family version %d", fam.Version)}
	}
	return &Conn{c: c, family: fam.ID}, nil
}

func modprobe(ctx context.Context) (string, error) {
	path, err := exec.LookPath("modprobe")
	if err != nil {
		for _, p := range []string{"/sbin/modprobe", "/usr/sbin/modprobe"} {
			if _, serr := os.Stat(p); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "modprobe not found", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "nbd").CombinedOutput()
	return string(out), err
}

func haveDevices() bool {
	m, _ := filepath.Glob("/dev/nbd[0-9]*")
	return len(m) > 0
}

// Close releases the netlink socket.
func (c *Conn) Close() error { return c.c.Close() }

// execute sends one request and returns the replies, honouring ctx.
func (c *Conn) execute(ctx context.Context, cmd uint8, ae *netlink.AttributeEncoder) ([]genetlink.Message, error) {
	b, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	if err := c.c.SetDeadline(dl); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	msgs, err := c.c.Execute(genetlink.Message{
		Header: genetlink.Header{Command: cmd, Version: familyVersion},
		Data:   b,
	}, c.family, netlink.Request|netlink.Acknowledge)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return msgs, err
}

func encodeSockets(ae *netlink.AttributeEncoder, socks []*os.File) {
	if len(socks) == 0 {
		return
	}
	ae.Nested(attrSockets, func(ne *netlink.AttributeEncoder) error {
		for _, s := range socks {
			fd := uint32(s.Fd())
			ne.Nested(sockItem, func(ie *netlink.AttributeEncoder) error {
				ie.Uint32(sockFD, fd)
				return nil
			})
		}
		return nil
	})
}

func encodeCommon(ae *netlink.AttributeEncoder, c *config) {
	if c.size > 0 {
		ae.Uint64(attrSizeBytes, c.size)
	}
	if c.blockSize > 0 {
		ae.Uint64(attrBlockSizeBytes, c.blockSize)
	}
	if c.timeout != nil {
		ae.Uint64(attrTimeout, seconds(*c.timeout))
	}
	if c.deadConn != nil {
		ae.Uint64(attrDeadConnTimeout, seconds(*c.deadConn))
	}
	if c.clientFlags != nil {
		ae.Uint64(attrClientFlags, uint64(*c.clientFlags))
	}
	if c.backend != "" {
		ae.String(attrBackendIdentifier, c.backend)
	}
}

// Connect hands socks (connected stream sockets whose peers serve the NBD
// transmission phase) to the kernel and starts a device. WithSize is
// required. It returns the device index (/dev/nbdN). The kernel takes its
// own references: the caller may close socks afterwards.
func (c *Conn) Connect(ctx context.Context, socks []*os.File, opts ...Option) (int, error) {
	cfg := buildConfig(opts)
	if cfg.size == 0 {
		return -1, &CommandError{Cmd: "connect", Index: cfg.index, Err: errors.New("size is required")}
	}
	if len(socks) == 0 {
		return -1, &CommandError{Cmd: "connect", Index: cfg.index, Err: errors.New("no sockets")}
	}
	ae := netlink.NewAttributeEncoder()
	if cfg.index >= 0 {
		ae.Uint32(attrIndex, uint32(cfg.index))
	}
	encodeCommon(ae, &cfg)
	if cfg.serverFlags != nil {
		ae.Uint64(attrServerFlags, *cfg.serverFlags)
	}
	encodeSockets(ae, socks)
	msgs, err := c.execute(ctx, cmdConnect, ae)
	runtime.KeepAlive(socks)
	if err != nil {
		return -1, &CommandError{Cmd: "connect", Index: cfg.index, Err: err}
	}
	index := cfg.index
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			continue
		}
		for ad.Next() {
			if ad.Type() == attrIndex {
				index = int(ad.Uint32())
			}
		}
	}
	if index < 0 {
		return -1, &CommandError{Cmd: "connect", Index: -1, Err: errors.New("kernel reply carries no device index")}
	}
	return index, nil
}

// Reconfigure changes a connected device: fresh sockets replace dead ones
// (after a server restart), WithSize resizes it, the timeouts and client
// flags are updated. If the device was connected with a backend identifier,
// WithBackendIdentifier must repeat it or the kernel answers EINVAL.
// Server flags cannot be changed (the kernel ignores them here).
func (c *Conn) Reconfigure(ctx context.Context, index int, socks []*os.File, opts ...Option) error {
	if index < 0 {
		return &CommandError{Cmd: "reconfigure", Index: index, Err: errors.New("index is required")}
	}
	cfg := buildConfig(opts)
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIndex, uint32(index))
	encodeCommon(ae, &cfg)
	encodeSockets(ae, socks)
	_, err := c.execute(ctx, cmdReconfigure, ae)
	runtime.KeepAlive(socks)
	if err != nil {
		return &CommandError{Cmd: "reconfigure", Index: index, Err: err}
	}
	return nil
}

// Resize sets the size of a connected device online. backendID must be the
// identifier the device was connected with ("" if none).
func (c *Conn) Resize(ctx context.Context, index int, size uint64, backendID string) error {
	return c.Reconfigure(ctx, index, nil, WithSize(size), WithBackendIdentifier(backendID))
}

// Disconnect sends NBD_CMD_DISC to the server, shuts the device's sockets
// down and clears the device. Disconnecting an unconfigured device succeeds.
func (c *Conn) Disconnect(ctx context.Context, index int) error {
	ae := netlink.NewAttributeEncoder()
	ae.Uint32(attrIndex, uint32(index))
	if _, err := c.execute(ctx, cmdDisconnect, ae); err != nil {
		return &CommandError{Cmd: "disconnect", Index: index, Err: err}
	}
	return nil
}

// Device is one entry of NBD_CMD_STATUS.
type Device struct {
	Index int
	// Connected is true while the device holds a configuration (between
	// CONNECT and the end of DISCONNECT), also while all its sockets are
	// dead and it waits for a RECONFIGURE.
	Connected bool
}

// Path is the device node, /dev/nbdN.
func (d Device) Path() string { return DevicePath(d.Index) }

// Status lists the kernel's nbd devices; with index >= 0 only that one (an
// empty list if it does not exist).
func (c *Conn) Status(ctx context.Context, index int) ([]Device, error) {
	ae := netlink.NewAttributeEncoder()
	if index >= 0 {
		ae.Uint32(attrIndex, uint32(index))
	}
	msgs, err := c.execute(ctx, cmdStatus, ae)
	if err != nil {
		return nil, &CommandError{Cmd: "status", Index: index, Err: err}
	}
	var devs []Device
	for _, m := range msgs {
		d, err := decodeStatus(m.Data)
		if err != nil {
			return nil, &CommandError{Cmd: "status", Index: index, Err: err}
		}
		devs = append(devs, d...)
	}
	return devs, nil
}

// The package level functions open a Conn for one request.

// Connect is Dial + Conn.Connect + Close.
func Connect(ctx context.Context, socks []*os.File, opts ...Option) (int, error) {
	c, err := Dial(ctx)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	return c.Connect(ctx, socks, opts...)
}

// Reconfigure is Dial + Conn.Reconfigure + Close.
func Reconfigure(ctx context.Context, index int, socks []*os.File, opts ...Option) error {
	c, err := Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Reconfigure(ctx, index, socks, opts...)
}

// Resize is Dial + Conn.Resize + Close.
func Resize(ctx context.Context, index int, size uint64, backendID string) error {
	c, err := Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Resize(ctx, index, size, backendID)
}

// Disconnect is Dial + Conn.Disconnect + Close.
func Disconnect(ctx context.Context, index int) error {
	c, err := Dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Disconnect(ctx, index)
}

// Status is Dial + Conn.Status + Close.
func Status(ctx context.Context, index int) ([]Device, error) {
	c, err := Dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Status(ctx, index)
}
