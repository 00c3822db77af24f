package rados_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
)

func connect(t *testing.T, cfg rados.Config) *rados.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rados.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func health(t *testing.T, c *rados.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := c.MonCommand(ctx, `{"prefix":"health","format":"json"}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Status string }
	if err := json.Unmarshal(out, &h); err != nil || !strings.HasPrefix(h.Status, "HEALTH_") {
		t.Fatalf("health: %s (%v)", out, err)
	}
	return h.Status
}

// TestIntegrationMatrix: status and mon commands on every release, with
// the AES and (Tentacle) aes256k keys, in crc and secure mode.
func TestIntegrationMatrix(t *testing.T) {
	type variant struct {
		name, user, keyringVar string
	}
	for _, cluster := range cephtest.All() {
		for _, mode := range []string{rados.MsModeCRC, rados.MsModeSecure} {
			vars := []variant{{"admin", "", ""}}
			if cluster == "tentacle" {
				vars = append(vars, variant{"admin256", "client.admin256", "CEPH_ADMIN256_KEYRING"})
			}
			for _, v := range vars {
				t.Run(cluster+"/"+mode+"/"+v.name, func(t *testing.T) {
					cl := cephtest.Need(t, cluster)
					cfg := rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring(), MsMode: mode, User: v.user}
					if v.keyringVar != "" {
						if cfg.Keyring = cl.Get(v.keyringVar); cfg.Keyring == "" {
							t.Fatalf("%s not set in cluster.env", v.keyringVar)
						}
					}
					c := connect(t, cfg)
					if want := cl.Get("CEPH_FSID"); want != "" && c.FSID() != want {
						t.Errorf("fsid %s, want %s", c.FSID(), want)
					}
					info, ok := c.MonClient().SessionInfo()
					want := messenger.ModeCRC
					if mode == rados.MsModeSecure {
						want = messenger.ModeSecure
					}
					if !ok || info.ConMode != want {
						t.Errorf("con mode %d, want %d", info.ConMode, want)
					}
					health(t, c)
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					out, _, err := c.MonCommand(ctx, `{"prefix":"status","format":"json"}`, nil)
					if err != nil {
						t.Fatal(err)
					}
					var st struct {
						FSID        string   `json:"fsid"`
						QuorumNames []string `json:"quorum_names"`
					}
					if err := json.Unmarshal(out, &st); err != nil || st.FSID != c.FSID() || len(st.QuorumNames) == 0 {
						t.Errorf("status: %s (%v)", out, err)
					}
					if c.GlobalID() == 0 {
						t.Error("no global id")
					}
				})
			}
		}
	}
}

// TestIntegrationCephCSIStyle connects the way ceph-csi passes
// credentials: "host:port" monitors, a user id and a key, no files.
func TestIntegrationCephCSIStyle(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	c := connect(t, rados.Config{
		Monitors: strings.Split(cl.Get("CEPH_MON_V2"), ","),
		User:     "admin",
		Key:      cl.Get("CEPH_ADMIN_KEY"),
	})
	health(t, c)
}

func TestIntegrationNoAuth(t *testing.T) {
	cl := cephtest.Need(t, "noauth")
	health(t, connect(t, rados.Config{ConfFile: cl.Conf()}))
}

// TestIntegrationPermission: a wrong key and an unknown user fail with
// ErrPermission at once (well within the deadline, which would otherwise
// turn the error into ErrNoMonitor).
func TestIntegrationPermission(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	const wrongKey = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
	for _, tt := range []struct{ name, user, key string }{
		{"wrong key", "admin", wrongKey},
		{"unknown user", "nobody", wrongKey},
		{"unknown user with admin key", "nobody", cl.Get("CEPH_ADMIN_KEY")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := rados.Connect(ctx, rados.Config{Monitors: []string{cl.Get("CEPH_MON_V2")}, User: tt.user, Key: tt.key})
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, rados.ErrPermission) || errors.Is(err, rados.ErrNoMonitor) {
				t.Fatalf("err %v, want ErrPermission", err)
			}
		})
	}
}

// TestIntegrationUnreachable: nothing listens; the deadline error names
// every address tried.
func TestIntegrationUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := rados.Connect(ctx, rados.Config{Monitors: []string{"127.0.0.1:1", "v2:127.0.0.1:2/0"}, User: "admin",
		Key: "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="})
	if !errors.Is(err, rados.ErrNoMonitor) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want ErrNoMonitor and DeadlineExceeded", err)
	}
	for _, a := range []string{"127.0.0.1:1", "127.0.0.1:2"} {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name %s", err, a)
		}
	}
}

// TestIntegrationSecureRequired: a secure-only cluster refuses crc with a
// clear error, and works with the default mode list.
func TestIntegrationSecureRequired(t *testing.T) {
	cl := cephtest.Need(t, "pacific-secure")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring(), MsMode: rados.MsModeCRC})
	if !errors.Is(err, rados.ErrSecureRequired) {
		t.Fatalf("err %v, want ErrSecureRequired", err)
	}
	if !strings.Contains(err.Error(), "secure") {
		t.Errorf("error %q does not say secure", err)
	}
	c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	if info, _ := c.MonClient().SessionInfo(); info.ConMode != messenger.ModeSecure {
		t.Errorf("con mode %d", info.ConMode)
	}
	health(t, c)
}

// monScript runs test/cluster/mon.sh.
func monScript(t *testing.T, args ...string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "test", "cluster", "mon.sh")
	out, err := exec.Command(script, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mon.sh %v: %v\n%s", args, err, out)
	}
	t.Logf("mon.sh %v: %s", args, strings.TrimSpace(string(out)))
}

// monID maps a pacific3 monitor address to its id (a, b, c in port order).
func monID(t *testing.T, c *rados.Conn, addr entity.Addr) string {
	for _, m := range c.Monitors().Mons {
		if v2, ok := m.Addrs.Msgr2(); ok && v2.Equal(addr) {
			return m.Name
		}
	}
	t.Fatalf("session address %v is not in the monmap", addr)
	return ""
}

// TestIntegrationFailover stops the monitor the client uses; the next
// command must still work (on another monitor). Then it connects while
// the first listed monitor is down.
func TestIntegrationFailover(t *testing.T) {
	cl := cephtest.Need(t, "pacific3")
	c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	health(t, c)
	gid := c.GlobalID()
	first := c.MonClient().SessionAddr()
	id := monID(t, c, first)
	monScript(t, "pacific3", "stop", id)
	t.Cleanup(func() { monScript(t, "pacific3", "start", id) })
	start := time.Now()
	health(t, c)
	t.Logf("first command after stopping mon.%s took %v", id, time.Since(start))
	now := c.MonClient().SessionAddr()
	if now.Equal(first) || now.IsBlank() {
		t.Errorf("still on %v after stopping mon.%s", now, id)
	}
	if c.GlobalID() != gid {
		t.Errorf("global id changed %d -> %d (reclaim failed)", gid, c.GlobalID())
	}
	monScript(t, "pacific3", "start", id)

	// First listed monitor down.
	mons := strings.Split(cl.Get("CEPH_MON_V2"), ",")
	monScript(t, "pacific3", "stop", "a")
	c2 := connect(t, rados.Config{Monitors: mons, User: "admin", Key: cl.Get("CEPH_ADMIN_KEY")})
	health(t, c2)
	monScript(t, "pacific3", "start", "a")
}

// TestIntegrationTicketRenewal shortens the ticket lifetimes at runtime
// (the mon reads auth_mon_ticket_ttl / auth_service_ticket_ttl from its
// config each time it builds a ticket, CephxServiceHandler and
// KeyServer), keeps one client open for three lifetimes with a reconnect
// to another monitor (global_id reclaim) in the middle, and checks that
// commands keep working, the AUTH ticket was renewed and the global id
// never changed.
func TestIntegrationTicketRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about a minute")
	}
	cl := cephtest.Need(t, "pacific3")
	const ttl = 20 // seconds
	admin := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	ctx := context.Background()
	for _, opt := range []string{"auth_mon_ticket_ttl", "auth_service_ticket_ttl"} {
		if _, _, err := admin.MonCommand(ctx, `{"prefix":"config set","who":"mon","name":"`+opt+`","value":"20"}`, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, _, err := admin.MonCommand(context.Background(), `{"prefix":"config rm","who":"mon","name":"`+opt+`"}`, nil); err != nil {
				t.Errorf("restoring %s: %v", opt, err)
			}
		})
	}
	c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring()})
	cx := c.Cephx()
	first, ok := cx.Ticket(entity.TypeAuth)
	if !ok {
		t.Fatal("no AUTH ticket")
	}
	if life := time.Until(first.Expires); life > 2*ttl*time.Second {
		t.Fatalf("AUTH ticket lives %v; the short ttl was not applied", life)
	}
	gid := c.GlobalID()
	deadline := time.Now().Add(3 * ttl * time.Second)
	reconnected := false
	for time.Now().Before(deadline) {
		health(t, c)
		if !reconnected && time.Now().After(deadline.Add(-2*ttl*time.Second)) {
			before := c.MonClient().SessionAddr()
			c.MonClient().Reconnect()
			health(t, c)
			if after := c.MonClient().SessionAddr(); after.Equal(before) {
				t.Logf("reconnect landed on the same monitor %v", after)
			}
			reconnected = true
		}
		time.Sleep(2 * time.Second)
	}
	health(t, c)
	last, ok := cx.Ticket(entity.TypeAuth)
	if !ok || !last.Expires.After(first.Expires.Add(ttl*time.Second)) {
		t.Errorf("AUTH ticket not renewed: first expires %v, now %v (ok %v)", first.Expires, last.Expires, ok)
	}
	if _, ok := cx.Ticket(entity.TypeOSD); !ok {
		t.Error("no valid OSD ticket after three lifetimes")
	}
	if c.GlobalID() != gid {
		t.Errorf("global id changed %d -> %d", gid, c.GlobalID())
	}
	renewals, sessions := c.MonClient().Stats()
	t.Logf("MAuth renewals %d, sessions %d", renewals, sessions)
	if renewals < 2 || sessions < 2 {
		t.Errorf("renewals %d (want >= 2 in three lifetimes), sessions %d (want >= 2)", renewals, sessions)
	}
}

// TestIntegrationWrongCluster: monitors of another fsid are refused.
func TestIntegrationWrongCluster(t *testing.T) {
	cl := cephtest.Need(t, "pacific")
	other := cephtest.Need(t, "reef")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := rados.Connect(ctx, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring(), FSID: other.Get("CEPH_FSID")})
	if !errors.Is(err, rados.ErrWrongCluster) {
		t.Fatalf("err %v, want ErrWrongCluster", err)
	}
	c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring(), FSID: cl.Get("CEPH_FSID")})
	health(t, c)
}

// TestIntegrationServiceAuth authenticates to a real OSD with the
// authorizer from Conn.ServiceAuth, after dropping the OSD ticket so it
// must be fetched over the monitor session first.
func TestIntegrationServiceAuth(t *testing.T) {
	for _, cluster := range cephtest.All() {
		for _, mode := range []string{rados.MsModeCRC, rados.MsModeSecure} {
			t.Run(cluster+"/"+mode, func(t *testing.T) {
				cl := cephtest.Need(t, cluster)
				c := connect(t, rados.Config{ConfFile: cl.Conf(), Keyring: cl.Keyring(), MsMode: mode})
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				out, _, err := c.MonCommand(ctx, `{"prefix":"osd dump","format":"json"}`, nil)
				if err != nil {
					t.Fatal(err)
				}
				var dump struct {
					OSDs []struct {
						OSD         int `json:"osd"`
						PublicAddrs struct {
							AddrVec []struct {
								Type  string `json:"type"`
								Addr  string `json:"addr"`
								Nonce uint32 `json:"nonce"`
							} `json:"addrvec"`
						} `json:"public_addrs"`
					} `json:"osds"`
				}
				if err := json.Unmarshal(out, &dump); err != nil || len(dump.OSDs) == 0 {
					t.Fatalf("osd dump: %v %s", err, out)
				}
				var addr entity.Addr
				for _, a := range dump.OSDs[0].PublicAddrs.AddrVec {
					if a.Type == "v2" {
						addr, err = entity.ParseAddr(fmt.Sprintf("v2:%s/%d", a.Addr, a.Nonce))
						if err != nil {
							t.Fatal(err)
						}
					}
				}
				if addr.IsBlank() {
					t.Fatalf("osd.%d has no v2 address", dump.OSDs[0].OSD)
				}
				c.Cephx().InvalidateTicket(entity.TypeOSD)
				auth, err := c.ServiceAuth(ctx, entity.TypeOSD)
				if err != nil {
					t.Fatal(err)
				}
				oc, err := messenger.Dial(ctx, messenger.Config{
					Addr: addr, PeerType: entity.TypeOSD, Auth: auth,
					Features: mon.ClientFeatures, GlobalID: c.GlobalID(),
					Dispatch: func(*messenger.Message) {}, OnFault: func(error) {},
				})
				if err != nil {
					t.Fatalf("dial osd.%d at %v: %v", dump.OSDs[0].OSD, addr, err)
				}
				defer oc.Close()
				if p := oc.Peer(); p.GlobalID != int64(dump.OSDs[0].OSD) {
					t.Errorf("peer gid %d, want osd id %d", p.GlobalID, dump.OSDs[0].OSD)
				}
			})
		}
	}
}
