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

func noauthMon(t *testing.T) entity.Addr {
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
