package messenger

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// testFeatures is the kernel client's CEPH_FEATURES_SUPPORTED_DEFAULT
// (include/linux/ceph/ceph_features.h); good enough to be let in by a mon.
const testFeatures = 0x2f018fb87aa4aafe

// Message types used by the tests (include/ceph_fs.h, msgr.h).
const (
	msgMonGetVersion      = 19
	msgMonGetVersionReply = 20
)

func noauthMon(t *testing.T) entity.Addr { return cephtestNeed(t) }

func cephtestNeed(t testing.TB) entity.Addr {
	t.Helper()
	c := cephtest.Need(t, "noauth")
	a, err := entity.ParseAddr("v2:" + c.Get("CEPH_MON_V2") + "/0")
	if err != nil {
		t.Fatalf("CEPH_MON_V2 %q: %v", c.Get("CEPH_MON_V2"), err)
	}
	return a
}

func noauthConfig(addr entity.Addr) Config {
	return Config{
		Addr:     addr,
		PeerType: entity.TypeMon,
		Auth:     &NoneAuth{EntityName: entity.Name{Type: entity.TypeClient, ID: "admin"}},
		Features: testFeatures,
	}
}

// getVersion encodes an MMonGetVersion front: u64 handle, string what.
func getVersion(tid uint64, what string) *Message {
	e := encoding.NewEncoder(nil)
	e.U64(tid)
	e.String(what)
	return &Message{Type: msgMonGetVersion, Version: 1, CompatVersion: 1, Tid: tid, Front: e.Bytes()}
}

func TestIntegrationNoauthGetVersion(t *testing.T) {
	addr := noauthMon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *Message, 4)
	cfg := noauthConfig(addr)
	cfg.Dispatch = func(m *Message) { got <- m }
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	p := c.Peer()
	t.Logf("peer %+v local %s", p, c.LocalAddr())
	if p.ConMode != ModeCRC || !p.Lossy || p.Features == 0 {
		t.Errorf("peer info %+v", p)
	}
	if !p.MyAddr.IP.Addr().IsLoopback() {
		t.Errorf("addr_for_me %s is not loopback", p.MyAddr)
	}
	for tid := uint64(1); tid <= 2; tid++ {
		if err := c.Send(ctx, getVersion(tid, "osdmap")); err != nil {
			t.Fatalf("Send: %v", err)
		}
		select {
		case m := <-got:
			if m.Type != msgMonGetVersionReply || len(m.Front) < 24 {
				t.Fatalf("reply type %d front %x", m.Type, m.Front)
			}
			handle := binary.LittleEndian.Uint64(m.Front)
			version := binary.LittleEndian.Uint64(m.Front[8:])
			if handle != tid || version == 0 {
				t.Fatalf("reply handle %d version %d", handle, version)
			}
			if m.Seq != tid {
				t.Errorf("reply seq %d, want %d", m.Seq, tid)
			}
		case <-ctx.Done():
			t.Fatal("no reply")
		}
	}
}

func TestIntegrationNoauthSecureRefused(t *testing.T) {
	addr := noauthMon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := noauthConfig(addr)
	cfg.Auth = &secureOnly{NoneAuth{EntityName: entity.Name{Type: entity.TypeClient, ID: "admin"}}}
	_, err := Dial(ctx, cfg)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), addr.String()) {
		t.Fatalf("secure-only auth none: got %v, want ErrAuth naming %s", err, addr)
	}
	t.Log(err)
}

// secureOnly offers auth none with secure mode only, which Ceph refuses
// (AuthRegistry filters secure out for auth none).
type secureOnly struct{ NoneAuth }

func (s *secureOnly) AuthRequest() (uint32, []uint32, []byte, error) {
	m, _, p, err := s.NoneAuth.AuthRequest()
	return m, []uint32{ModeSecure}, p, err
}

func TestIntegrationClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr, _ := entity.ParseAddr("v2:127.0.0.1:" + itoa(port) + "/0")
	_, err = Dial(context.Background(), noauthConfig(addr))
	var oe *OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !strings.Contains(err.Error(), addr.String()) {
		t.Fatalf("got %v, want a dial OpError naming %s", err, addr)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestIntegrationNoauthKeepalive(t *testing.T) {
	addr := noauthMon(t)
	clk := newFakeClock()
	events := make(chan string, 16)
	cfg := noauthConfig(addr)
	cfg.hooks = &hooks{clock: clk, event: func(e string) { events <- e }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 2; i++ {
		clk.advance(10 * time.Second)
		clk.tick()
		waitEventCtx(t, ctx, events, "keepalive_ack")
		if !c.LastKeepaliveAck().Equal(clk.Now()) {
			t.Fatalf("mon echoed %v, want %v", c.LastKeepaliveAck(), clk.Now())
		}
	}
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

func waitEventCtx(t *testing.T, ctx context.Context, events chan string, want string) {
	t.Helper()
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s", want)
		}
	}
}

// TestIntegrationNoauthPeerClose sends an MMonGetVersion whose front is
// truncated; the mon fails to decode it and drops the lossy connection,
// which must fault ours exactly once.
func TestIntegrationNoauthPeerClose(t *testing.T) {
	addr := noauthMon(t)
	faults := make(chan error, 2)
	cfg := noauthConfig(addr)
	cfg.OnFault = func(err error) { faults <- err }
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(ctx, &Message{Type: msgMonGetVersion, Version: 1, Front: []byte{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-faults:
		t.Logf("fault: %v", err)
		if !strings.Contains(err.Error(), addr.String()) {
			t.Errorf("fault %q does not name %s", err, addr)
		}
	case <-ctx.Done():
		t.Fatal("mon did not close the connection")
	}
	<-c.Done()
	if err := c.Send(ctx, getVersion(2, "osdmap")); err == nil || err != c.Err() {
		t.Errorf("Send after fault: %v (Err %v)", err, c.Err())
	}
	select {
	case err := <-faults:
		t.Fatalf("second OnFault: %v", err)
	default:
	}
}

// stallConn holds the first read after the banner until ctx ends, so the
// context's deadline expires in the middle of a real handshake.
type stallConn struct {
	net.Conn
	ctx   context.Context
	reads int
}

func (s *stallConn) Read(p []byte) (int, error) {
	s.reads++
	if s.reads == 2 {
		<-s.ctx.Done()
	}
	return s.Conn.Read(p)
}

func TestIntegrationNoauthDeadlineDuringHandshake(t *testing.T) {
	addr := noauthMon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cfg := noauthConfig(addr)
	cfg.hooks = &hooks{wrap: func(nc net.Conn) net.Conn { return &stallConn{Conn: nc, ctx: ctx} }}
	_, err := Dial(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr.String()) {
		t.Fatalf("got %v", err)
	}
}

func TestIntegrationMsgr1Port(t *testing.T) {
	c := cephtest.Need(t, "noauth")
	addr, err := entity.ParseAddr("v2:" + c.Get("CEPH_MON_V1") + "/0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = Dial(ctx, noauthConfig(addr))
	if !errors.Is(err, ErrNotMsgr2) || !strings.Contains(err.Error(), addr.String()) {
		t.Fatalf("got %v", err)
	}
}
