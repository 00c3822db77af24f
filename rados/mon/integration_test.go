package mon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
