package messenger

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
)

// tapConn records the bytes read from and written to a connection.
type tapConn struct {
	net.Conn
	mu     sync.Mutex
	rx, tx []byte
}

func (t *tapConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.mu.Lock()
	t.rx = append(t.rx, p[:n]...)
	t.mu.Unlock()
	return n, err
}

func (t *tapConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.mu.Lock()
	t.tx = append(t.tx, p[:n]...)
	t.mu.Unlock()
	return n, err
}

const (
	msgMonCommand    = 50
	msgMonCommandAck = 51
)

// monCommand encodes an MMonCommand front: the PaxosServiceMessage header
// (u64 version, i16 deprecated session mon, u64 session mon tid), the
// cluster fsid and the command strings.
func monCommand(tid uint64, fsid [16]byte, cmd string) *Message {
	e := encoding.NewEncoder(nil)
	e.U64(0)
	e.I16(-1)
	e.U64(0)
	e.UUID(fsid)
	e.Strings([]string{cmd})
	return &Message{Type: msgMonCommand, Version: 1, CompatVersion: 1, Tid: tid, Front: e.Bytes()}
}

func parseFSID(t *testing.T, s string) (u [16]byte) {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		t.Fatalf("fsid %q: %v", s, err)
	}
	copy(u[:], b)
	return u
}

// TestCaptureNoauth records a real crc-mode exchange with the noauth
// cluster's mon (banner, HELLO, auth none, signatures, idents, an
// MMonGetVersion and an MMonCommand round trip, a keepalive) and, with
// GORBD_CAPTURE=1, writes both directions to ../msgr2/testdata for the
// codec's byte-vector tests.
func TestCaptureNoauth(t *testing.T) {
	cl := cephtest.Need(t, "noauth")
	addr := noauthMon(t)
	fsid := parseFSID(t, cl.Get("CEPH_FSID"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var tap *tapConn
	clk := newFakeClock()
	events := make(chan string, 16)
	got := make(chan *Message, 4)
	cfg := noauthConfig(addr)
	cfg.Dispatch = func(m *Message) { got <- m }
	cfg.hooks = &hooks{
		clock: clk,
		wrap:  func(nc net.Conn) net.Conn { tap = &tapConn{Conn: nc}; return tap },
		event: func(e string) { events <- e },
	}
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wait := func(what string) *Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-ctx.Done():
			t.Fatalf("no %s", what)
		}
		return nil
	}
	if err := c.Send(ctx, getVersion(1, "osdmap")); err != nil {
		t.Fatal(err)
	}
	if m := wait("get_version reply"); m.Type != msgMonGetVersionReply {
		t.Fatalf("type %d", m.Type)
	}
	if err := c.Send(ctx, monCommand(2, fsid, `{"prefix": "fsid"}`)); err != nil {
		t.Fatal(err)
	}
	m := wait("command ack")
	if m.Type != msgMonCommandAck || strings.TrimSpace(string(m.Data)) != cl.Get("CEPH_FSID") {
		t.Fatalf("command ack type %d data %q", m.Type, m.Data)
	}
	clk.tick()
	for e := range events {
		if e == "keepalive_ack" {
			break
		}
	}
	if c.LastKeepaliveAck().IsZero() {
		t.Fatal("no keepalive ack stamp")
	}
	c.Close()
	if os.Getenv("GORBD_CAPTURE") != "1" {
		return
	}
	tap.mu.Lock()
	defer tap.mu.Unlock()
	dir := filepath.Join("..", "msgr2", "testdata")
	for name, b := range map[string][]byte{"noauth_client.bin": tap.tx, "noauth_server.bin": tap.rx} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("captured %d bytes sent, %d received", len(tap.tx), len(tap.rx))

	// The first bytes a msgr v1 mon sends: its banner, then its address.
	nc, err := net.Dial("tcp", cl.Get("CEPH_MON_V1"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	v1 := make([]byte, 26)
	if _, err := io.ReadFull(nc, v1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "msgr1_banner.bin"), v1, 0o644); err != nil {
		t.Fatal(err)
	}
}
