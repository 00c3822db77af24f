package mon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/config"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
)

// cephxAuth adapts cephx.Client to mon.Authenticator (package rados has
// the production copy; tests of mon must not import rados).
type cephxAuth struct{ c *cephx.Client }

func (a cephxAuth) AuthClient(uint64) messenger.AuthClient { return a.c.MonAuth() }
func (a cephxAuth) RenewAfter() time.Time                  { return a.c.RenewAfter() }
func (a cephxAuth) BuildRenewal() (uint32, []byte, error)  { return a.c.BuildRenewal() }
func (a cephxAuth) HandleRenewal(r int32, g uint64, p []byte) error {
	return a.c.HandleRenewal(r, g, p)
}

func dialCluster(t *testing.T, cl *cephtest.Cluster, mutate func(*mon.Config)) (*mon.Client, *cephx.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	cfg := mon.Config{Auth: cephxAuth{cx}}
	for _, m := range cc.Mons {
		cfg.Mons = append(cfg.Mons, m.Addrs)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := mon.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cx
}

// capture keeps the first message of each type (and header version) seen.
type capture struct {
	mu   sync.Mutex
	msgs map[string]*messenger.Message
}

func (c *capture) on(m *messenger.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := fmt.Sprintf("%d-v%d", m.Type, m.Version)
	if _, ok := c.msgs[k]; !ok {
		cp := *m
		cp.Front = append([]byte(nil), m.Front...)
		cp.Data = append([]byte(nil), m.Data...)
		c.msgs[k] = &cp
	}
}

// TestIntegrationMonRequests exercises every request type against real
// clusters: commands (with an error), GetVersion, an osdmap
// subscription, unmanaged snapshot create/delete pool ops, and a
// service-ticket request over MAuth. With GORBD_CAPTURE=1 it writes the
// reply fronts to testdata/ as unit-test and fuzz vectors.
func TestIntegrationMonRequests(t *testing.T) {
	for _, name := range []string{"pacific", "reef", "tentacle"} {
		t.Run(name, func(t *testing.T) {
			cl := cephtest.Need(t, name)
			cp := &capture{msgs: map[string]*messenger.Message{}}
			maps := make(chan *mon.OSDMapMsg, 16)
			c, cx := dialCluster(t, cl, func(cfg *mon.Config) {
				cfg.OnMessage = cp.on
				cfg.OnOSDMap = func(m *mon.OSDMapMsg) {
					select {
					case maps <- m:
					default:
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			if got, want := mon.FormatUUID(c.FSID()), cl.Get("CEPH_FSID"); want != "" && got != want {
				t.Errorf("fsid %s, want %s", got, want)
			}
			out, _, err := c.Command(ctx, []string{`{"prefix":"fsid","format":"json"}`}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var fs struct{ FSID string }
			if err := json.Unmarshal(out, &fs); err != nil || fs.FSID != mon.FormatUUID(c.FSID()) {
				t.Errorf("fsid command: %s (%v)", out, err)
			}
			_, status, err := c.Command(ctx, []string{`{"prefix":"osd pool get","pool":"no-such-pool","var":"size"}`}, nil)
			var ce *mon.CommandError
			if !errors.As(err, &ce) || !errors.Is(err, syscall.ENOENT) || ce.Status == "" {
				t.Errorf("unknown pool: err %v status %q, want ENOENT with a text", err, status)
			}

			newest, oldest, err := c.GetVersion(ctx, "osdmap")
			if err != nil || newest == 0 || oldest > newest {
				t.Fatalf("GetVersion osdmap: %d %d %v", newest, oldest, err)
			}
			if err := c.SubscribeOSDMap(ctx, 0); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-maps:
				if m.Last() < uint32(newest) || len(m.Full)+len(m.Incrementals) == 0 {
					t.Errorf("osdmap message %d..%d, newest is %d", m.First(), m.Last(), newest)
				}
			case <-ctx.Done():
				t.Fatal("no osdmap after subscribing")
			}

			pool := poolID(ctx, t, c, cl.Get("CEPH_POOL"))
			rep, err := c.PoolOp(ctx, mon.MPoolOp{Pool: uint32(pool), Op: mon.PoolOpCreateUnmanagedSnap})
			if err != nil {
				t.Fatal(err)
			}
			snap, ok := rep.SnapID()
			if !ok || snap == 0 {
				t.Fatalf("create unmanaged snap: reply %+v", rep)
			}
			if _, err := c.PoolOp(ctx, mon.MPoolOp{Pool: uint32(pool), Op: mon.PoolOpDeleteUnmanagedSnap, SnapID: snap}); err != nil {
				t.Fatalf("delete unmanaged snap %d: %v", snap, err)
			}
			if _, err := c.PoolOp(ctx, mon.MPoolOp{Pool: 987654, Op: mon.PoolOpCreateUnmanagedSnap}); err == nil {
				t.Error("pool op on a missing pool succeeded")
			}

			cx.InvalidateTicket(entity.TypeOSD)
			if err := c.RenewTickets(ctx); err != nil {
				t.Fatalf("service ticket request: %v", err)
			}
			if _, ok := cx.Ticket(entity.TypeOSD); !ok {
				t.Error("no OSD ticket after renewal")
			}

			if os.Getenv("GORBD_CAPTURE") == "1" {
				cp.mu.Lock()
				defer cp.mu.Unlock()
				for k, m := range cp.msgs {
					p := filepath.Join("testdata", fmt.Sprintf("msg-%s-%s.front", k, name))
					if err := os.WriteFile(p, m.Front, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func poolID(ctx context.Context, t *testing.T, c *mon.Client, name string) int64 {
	t.Helper()
	if name == "" {
		name = "rbd"
	}
	out, _, err := c.Command(ctx, []string{`{"prefix":"osd pool ls","detail":"detail","format":"json"}`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pools []struct {
		PoolName string `json:"pool_name"`
		PoolID   int64  `json:"pool_id"`
	}
	if err := json.Unmarshal(out, &pools); err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if p.PoolName == name {
			return p.PoolID
		}
	}
	t.Fatalf("pool %q not found in %s", name, out)
	return 0
}

// TestIntegrationRequiredFeatures documents what the monitors demand of a
// client session: withholding any one of these bits makes the monitor
// answer CLIENT_IDENT with IDENT_MISSING_FEATURES on every release (the
// CRUSH/pool bits come from OSDMap::get_features(CLIENT) of a default
// cluster, MSG_ADDR2 from msgr2 itself). A probe of every advertised bit
// found exactly these seven on pacific, reef, tentacle and tentacle256;
// CRUSH_CHOOSE_ARGS/OSDMAP_PG_UPMAP (bit 21) and CEPHX_V2 become required
// once a cluster uses upmaps/weight-sets or require_min_compat_client >=
// nautilus.
func TestIntegrationRequiredFeatures(t *testing.T) {
	required := map[string]uint64{
		"CRUSH_TUNABLES":  mon.FeatureCrushTunables,
		"CRUSH_TUNABLES2": mon.FeatureCrushTunables2,
		"OSDHASHPSPOOL":   mon.FeatureOSDHashPSPool,
		"CRUSH_TUNABLES3": mon.FeatureCrushTunables3,
		"CRUSH_V4":        mon.FeatureCrushV4,
		"CRUSH_TUNABLES5": mon.FeatureCrushTunables5,
		"MSG_ADDR2":       mon.FeatureMsgAddr2,
	}
	for _, name := range []string{"pacific", "tentacle"} {
		t.Run(name, func(t *testing.T) {
			cl := cephtest.Need(t, name)
			for feat, bit := range required {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				cc, err := config.Resolve(ctx, config.Options{ConfPath: cl.Conf(), Keyring: cl.Keyring()})
				if err != nil {
					t.Fatal(err)
				}
				kr, _ := cephx.LoadKeyring(cl.Keyring())
				key, err := kr.Get(cc.Name)
				if err != nil {
					t.Fatal(err)
				}
				cfg := mon.Config{Auth: cephxAuth{cephx.NewClient(cc.Name, key)}, Features: mon.ClientFeatures &^ bit}
				for _, m := range cc.Mons {
					cfg.Mons = append(cfg.Mons, m.Addrs)
				}
				c, err := mon.Dial(ctx, cfg)
				cancel()
				if err == nil {
					c.Close()
					t.Errorf("without %s the monitor accepted us", feat)
					continue
				}
				var mf *messenger.MissingFeaturesError
				if !errors.As(err, &mf) || mf.Missing&bit == 0 {
					t.Errorf("without %s: %v, want IDENT_MISSING_FEATURES naming it", feat, err)
				}
			}
			// Without SERVER_NAUTILUS (bit 2) the monitor sends a legacy
			// MonMap: Dial must fail at once with a clear error, not wait.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cc, _ := config.Resolve(ctx, config.Options{ConfPath: cl.Conf(), Keyring: cl.Keyring()})
			kr, _ := cephx.LoadKeyring(cl.Keyring())
			key, _ := kr.Get(cc.Name)
			cfg := mon.Config{Auth: cephxAuth{cephx.NewClient(cc.Name, key)}, Features: mon.ClientFeatures &^ (1 << 2)}
			for _, m := range cc.Mons {
				cfg.Mons = append(cfg.Mons, m.Addrs)
			}
			c, err := mon.Dial(ctx, cfg)
			if err == nil {
				c.Close()
				t.Fatal("connected without SERVER_NAUTILUS")
			}
			if ctx.Err() != nil || !errors.Is(err, mon.ErrBadMessage) {
				t.Errorf("without SERVER_NAUTILUS: %v, want an unreadable-monmap error before the deadline", err)
			}
		})
	}
}

// TestIntegrationKeepaliveFailover freezes (SIGSTOP) the monitor the
// client talks to: no connection error happens, so only the keepalive
// timeout can notice. The next command must complete on another monitor.
func TestIntegrationKeepaliveFailover(t *testing.T) {
	cl := cephtest.Need(t, "pacific3")
	c, _ := dialCluster(t, cl, func(cfg *mon.Config) {
		cfg.KeepaliveInterval = time.Second
		cfg.KeepaliveTimeout = 5 * time.Second
		cfg.AttemptTimeout = 3 * time.Second
	})
	first := c.SessionAddr()
	var id string
	for _, m := range c.MonMap().Mons {
		if v2, ok := m.Addrs.Msgr2(); ok && v2.Equal(first) {
			id = m.Name
		}
	}
	if id == "" {
		t.Fatalf("session address %v not in the monmap", first)
	}
	pidFile := filepath.Join(cl.Dir, "run", "mon."+id+".pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.Contains(string(cmdline), cl.Dir) {
		t.Fatalf("pid %d (%q) is not mon.%s of %s", pid, cmdline, id, cl.Dir)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	if _, _, err := c.Command(ctx, []string{`{"prefix":"fsid"}`}, nil); err != nil {
		t.Fatalf("command with mon.%s frozen: %v", id, err)
	}
	t.Logf("command answered %v after freezing mon.%s, now on %v", time.Since(start), id, c.SessionAddr())
	if c.SessionAddr().Equal(first) {
		t.Errorf("still on the frozen monitor %v", first)
	}
	syscall.Kill(pid, syscall.SIGCONT)
}
