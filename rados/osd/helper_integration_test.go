package osd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
	"github.com/csi-gorbd/csi-gorbd/rados/msgr2"
	"github.com/csi-gorbd/csi-gorbd/rados/osd"
	"github.com/csi-gorbd/csi-gorbd/rados/osdmap"
)

// cephxAuth adapts cephx.Client to mon.Authenticator (package rados has
// the production wiring; this package's tests must not import it).
type cephxAuth struct{ c *cephx.Client }

func (a cephxAuth) AuthClient(uint64) messenger.AuthClient { return a.c.MonAuth() }
func (a cephxAuth) RenewAfter() time.Time                  { return a.c.RenewAfter() }
func (a cephxAuth) BuildRenewal() (uint32, []byte, error)  { return a.c.BuildRenewal() }
func (a cephxAuth) HandleRenewal(r int32, g uint64, p []byte) error {
	return a.c.HandleRenewal(r, g, p)
}

// stack is mon + cephx + osdmap + osd wired together against one cluster.
type stack struct {
	cl   *cephtest.Cluster
	mon  *mon.Client
	osd  *osd.Client
	pool int64
	// frames, when set, records every OSD message both ways.
	frames *frameLog

	connMu sync.Mutex
	conns  []faultable
}

// faultable is an open OSD connection and its fault callback.
type faultable struct {
	c osd.Conn
	h osd.Handler
}

// faultAll breaks every OSD connection the way a network error would:
// closed, and the client told through OnFault.
func (st *stack) faultAll() int {
	st.connMu.Lock()
	cs := st.conns
	st.conns = nil
	st.connMu.Unlock()
	for _, f := range cs {
		f.c.Close()
		f.h.OnFault(errors.New("test: injected fault"))
	}
	return len(cs)
}

// frameLog keeps the first message of each (direction, type).
type frameLog struct {
	mu   sync.Mutex
	msgs map[string]messenger.Message
}

func (f *frameLog) keep(dir string, m *messenger.Message) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fmt.Sprintf("%s-%d-%s", dir, m.Type, osd.FrameKey(m.Type, m.Version, m.Front, m.Data))
	if _, ok := f.msgs[k]; !ok {
		f.msgs[k] = messenger.Message{Type: m.Type, Version: m.Version, Tid: m.Tid,
			Front: bytes.Clone(m.Front), Data: bytes.Clone(m.Data)}
	}
}

// recConn records sent messages.
type recConn struct {
	osd.Conn
	f *frameLog
}

func (c recConn) Send(ctx context.Context, m *messenger.Message) error {
	c.f.keep("out", m)
	return c.Conn.Send(ctx, m)
}

func newStack(t testing.TB, name string, record bool) *stack {
	t.Helper()
	return newStackModes(t, name, record)
}

// newStackModes is newStack with the msgr2 connection modes offered to
// OSDs (default: cephx's preference).
func newStackModes(t testing.TB, name string, record bool, modes ...uint32) *stack {
	t.Helper()
	cl := cephtest.Need(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc, err := config.Resolve(ctx, config.Options{ConfPath: cl.Conf(), Keyring: cl.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := cephx.LoadKeyring(cl.Keyring())
	if err != nil {
		t.Fatal(err)
	}
	key, err := kr.Get(cc.Name)
	if err != nil {
		t.Fatal(err)
	}
	cx := cephx.NewClient(cc.Name, key)
	st := &stack{cl: cl}
	if record {
		st.frames = &frameLog{msgs: map[string]messenger.Message{}}
	}
	var oc atomic.Pointer[osd.Client]
	var mc atomic.Pointer[mon.Client]
	bg, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	resub := func() {
		if m := mc.Load(); m != nil {
			go m.SubscribeOSDMap(bg, 0)
		}
	}
	cfg := mon.Config{Auth: cephxAuth{cx}}
	for _, m := range cc.Mons {
		cfg.Mons = append(cfg.Mons, m.Addrs)
	}
	cfg.OnOSDMap = func(m *mon.OSDMapMsg) {
		// Only full maps are decoded here; an incremental makes us ask
		// for the newest full map again.
		if len(m.Full) == 0 {
			resub()
			return
		}
		om, err := osdmap.Decode(m.Full[len(m.Full)-1].Data)
		if err != nil {
			t.Errorf("decode osdmap: %v", err)
			return
		}
		if c := oc.Load(); c != nil {
			c.HandleMap(om)
		}
	}
	nonce := rand.Uint32() | 1
	dial := osd.MessengerDialer(osd.DialerConfig{
		Base:       messenger.Config{Features: mon.ClientFeatures, Nonce: nonce, Limits: msgr2.Limits{Data: 80 << 20}},
		GlobalID:   func() uint64 { return mc.Load().GlobalID() },
		Authorizer: func(int32) (messenger.AuthClient, error) { return cx.ServiceAuth(entity.TypeOSD, modes...), nil },
	})
	gdial := func(ctx context.Context, id int32, addrs entity.AddrVec, h osd.Handler) (osd.Conn, error) {
		if st.frames != nil {
			in := h.Dispatch
			h.Dispatch = func(m *messenger.Message) { st.frames.keep("in", m); in(m) }
		}
		c, err := dial(ctx, id, addrs, h)
		if err != nil {
			return c, err
		}
		st.connMu.Lock()
		st.conns = append(st.conns, faultable{c, h})
		st.connMu.Unlock()
		if st.frames == nil {
			return c, err
		}
		return recConn{c, st.frames}, nil
	}
	c, err := osd.New(osd.Config{
		Dial:       gdial,
		RequestMap: func(uint32) { resub() },
		Features:   mon.ClientFeatures,
	})
	if err != nil {
		t.Fatal(err)
	}
	oc.Store(c)
	st.osd = c
	m, err := mon.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mc.Store(m)
	st.mon = m
	t.Cleanup(func() { c.Close(); m.Close() })
	if err := m.SubscribeOSDMap(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForMap(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if cl.Get("CEPH_POOL") == "" {
		t.Skipf("cluster %s has no OSDs/pool", name)
	}
	pool, ok := c.Map().PoolByName(cl.Get("CEPH_POOL"))
	if !ok {
		t.Fatalf("pool %q not in the osdmap", cl.Get("CEPH_POOL"))
	}
	st.pool = pool
	return st
}

// rados runs the cluster's own rados CLI.
func (st *stack) rados(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	out, err := st.radosErr(stdin, args...)
	if err != nil {
		t.Fatalf("rados %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (st *stack) radosCmd(args ...string) *exec.Cmd {
	return st.tool("rados", args...)
}

// ceph runs the cluster's own ceph CLI.
func (st *stack) ceph(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := st.tool("ceph", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ceph %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (st *stack) tool(name string, args ...string) *exec.Cmd {
	full := append([]string{name, "-c", st.cl.Conf(), "-k", st.cl.Keyring()}, args...)
	if cli := st.cl.Get("CEPH_CLI"); cli != "" {
		full = append(strings.Fields(cli), full...)
	}
	return exec.Command(full[0], full[1:]...)
}

func (st *stack) radosErr(stdin []byte, args ...string) ([]byte, error) {
	cmd := st.radosCmd(args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// writeCaptures stores the recorded frames under testdata/ when
// GORBD_CAPTURE=1.
func (st *stack) writeCaptures(t *testing.T, prefix string) {
	if os.Getenv("GORBD_CAPTURE") != "1" || st.frames == nil {
		return
	}
	st.frames.mu.Lock()
	defer st.frames.mu.Unlock()
	for k, m := range st.frames.msgs {
		base := filepath.Join("testdata", fmt.Sprintf("%s-%s-v%d", prefix, k, m.Version))
		if err := os.WriteFile(base+".front", m.Front, 0o644); err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > 0 && len(m.Data) < 1<<16 {
			if err := os.WriteFile(base+".data", m.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// cleanup deletes an object when the test ends, whatever its outcome.
func (st *stack) cleanup(t *testing.T, ns, oid string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st.osd.Do(ctx, &osd.Request{Pool: st.pool, Namespace: ns, Object: oid, Ops: []osd.Op{osd.Delete()}})
	})
}

func newStackTB(tb testing.TB, name string) *stack { return newStack(tb, name, false) }
