package cephx

// Integration tests against the real clusters of test/cluster. They drive
// cephx through the pre-auth part of real msgr2 connections (preauth_test.go)
// to each cluster's mon and OSD. Set GORBD_CEPHX_CAPTURE=1 to (re)write the
// captured exchanges under testdata/captured/.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

var authClusters = []string{"pacific", "reef", "tentacle", "tentacle256"}

type clusterKey struct {
	name    string // entity id
	keyring string
}

func clusterKeys(c *cephtest.Cluster) []clusterKey {
	ks := []clusterKey{{"admin", c.Keyring()}}
	if p := c.Get("CEPH_ADMIN256_KEYRING"); p != "" {
		// tentacle: client.admin256; tentacle256: client.admin is aes256k too.
		kr, err := LoadKeyring(p)
		if err == nil {
			for n := range kr {
				if id := strings.TrimPrefix(n, "client."); id != "admin" || c.Get("CEPH_ADMIN_KEY_TYPE") != "aes256k" {
					ks = append(ks, clusterKey{id, p})
				}
			}
		}
	}
	return ks
}

func monAddr(t testing.TB, c *cephtest.Cluster) entity.Addr {
	t.Helper()
	hp := strings.Split(c.Get("CEPH_MON_V2"), ",")[0]
	a, err := entity.ParseAddr("v2:" + hp + "/0")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var osdBootRE = regexp.MustCompile(`osd\.0 \[(v2:[0-9.:]+/[0-9]+)`)

// osdAddr finds osd.0's v2 address in the mon log ("osd.0 [v2:...] boot").
func osdAddr(t testing.TB, c *cephtest.Cluster) entity.Addr {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(c.Dir, "log", "mon.a.log"))
	if err != nil {
		cephtest.Missing(t, "no mon log to find the OSD address: %v", err)
	}
	m := osdBootRE.FindAllSubmatch(log, -1)
	if len(m) == 0 {
		cephtest.Missing(t, "OSD address not found in mon log")
	}
	a, err := entity.ParseAddr(string(m[len(m)-1][1]))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func loadClient(t testing.TB, keyring, id string) *Client {
	t.Helper()
	c, err := LoadClient(keyring, entity.Name{Type: entity.TypeClient, ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIntegrationMonAuth(t *testing.T) {
	for _, cl := range authClusters {
		t.Run(cl, func(t *testing.T) {
			c := cephtest.Need(t, cl)
			mon := monAddr(t, c)
			for _, ck := range clusterKeys(c) {
				for _, mode := range []uint32{ModeCRC, ModeSecure} {
					modeName := map[uint32]string{ModeCRC: "crc", ModeSecure: "secure"}[mode]
					t.Run(ck.name+"/"+modeName, func(t *testing.T) {
						cli := loadClient(t, ck.keyring, ck.name)
						ctx := context.Background()
						info := &cephtestInfo{cl, c.Get("CEPH_VERSION")}
						a := cli.MonAuth(mode)
						res, err := preauth(ctx, t, mon, a)
						if err != nil {
							t.Fatalf("auth %s as client.%s (%v key): %v", cl, ck.name, cli.KeyType(), err)
						}
						if res.done.ConMode != mode {
							t.Fatalf("con mode %d, want %d", res.done.ConMode, mode)
						}
						gid := cli.GlobalID()
						if gid == 0 || gid != res.done.GlobalID {
							t.Fatalf("global id %d (AUTH_DONE %d)", gid, res.done.GlobalID)
						}
						for _, s := range []entity.Type{entity.TypeAuth, entity.TypeMon, entity.TypeOSD} {
							tk, ok := cli.Ticket(s)
							if !ok {
								t.Fatalf("no %v ticket", s)
							}
							if tk.Validity <= 0 || len(tk.Blob) == 0 {
								t.Fatalf("%v ticket: validity %v, blob %d bytes", s, tk.Validity, len(tk.Blob))
							}
						}
						auth, _ := cli.Ticket(entity.TypeAuth)
						if string(res.sessionKey) != string(auth.SessionKey.Secret()) {
							t.Fatal("session key is not the AUTH ticket's")
						}
						switch mode {
						case ModeSecure:
							if len(res.conSecret) < 40 {
								t.Fatalf("secure mode connection secret of %d bytes", len(res.conSecret))
							}
						case ModeCRC:
							if len(res.conSecret) != 0 {
								t.Fatalf("crc mode connection secret of %d bytes", len(res.conSecret))
							}
						}
						t.Logf("%s client.%s %v key: gid %d, AUTH %v key valid %v, OSD secret_id %d",
							cl, ck.name, cli.KeyType(), gid, auth.SessionKey.Type, auth.Validity, mustTicket(t, cli, entity.TypeOSD).SecretID)
						captureState{}.write(t, cl+"-"+ck.name+"-"+modeName+"-mon", info, cli, "mon", res)
						before := captureState{gid: gid, prev: auth}

						// Reconnect: reclaim the global_id with the AUTH ticket;
						// the new AUTH ticket blob comes back encrypted (is_enc).
						a2 := cli.MonAuth(mode)
						res2, err := preauth(ctx, t, mon, a2)
						if err != nil {
							t.Fatalf("reclaim: %v", err)
						}
						if !a2.Reclaiming() || cli.GlobalID() != gid {
							t.Fatalf("reclaim: reclaiming=%v gid %d -> %d", a2.Reclaiming(), gid, cli.GlobalID())
						}
						auth2, _ := cli.Ticket(entity.TypeAuth)
						if auth2 == auth || auth2.SessionKey.Equal(auth.SessionKey) {
							t.Fatal("reclaim did not renew the AUTH ticket")
						}
						before.write(t, cl+"-"+ck.name+"-"+modeName+"-reclaim", info, cli, "reclaim", res2)
					})
				}
			}
		})
	}
}

func mustTicket(t testing.TB, c *Client, s entity.Type) *Ticket {
	t.Helper()
	tk, ok := c.Ticket(s)
	if !ok {
		t.Fatalf("no %v ticket", s)
	}
	return tk
}

func TestIntegrationOSDAuthorizer(t *testing.T) {
	for _, cl := range authClusters {
		t.Run(cl, func(t *testing.T) {
			c := cephtest.Need(t, cl)
			mon := monAddr(t, c)
			osd := osdAddr(t, c)
			for _, ck := range clusterKeys(c) {
				for _, mode := range []uint32{ModeCRC, ModeSecure} {
					modeName := map[uint32]string{ModeCRC: "crc", ModeSecure: "secure"}[mode]
					t.Run(ck.name+"/"+modeName, func(t *testing.T) {
						cli := loadClient(t, ck.keyring, ck.name)
						ctx := context.Background()
						if _, err := preauth(ctx, t, mon, cli.MonAuth(mode)); err != nil {
							t.Fatal(err)
						}
						info := &cephtestInfo{cl, c.Get("CEPH_VERSION")}
						sa := cli.ServiceAuth(entity.TypeOSD, mode)
						res, err := preauth(ctx, t, osd, sa)
						if err != nil {
							t.Fatalf("osd auth: %v", err)
						}
						if len(res.replyMore) != 1 {
							t.Fatalf("%d challenge rounds, want 1", len(res.replyMore))
						}
						tk := mustTicket(t, cli, entity.TypeOSD)
						if string(res.sessionKey) != string(tk.SessionKey.Secret()) {
							t.Fatal("session key is not the OSD ticket's")
						}
						if mode == ModeSecure && len(res.conSecret) < 40 {
							t.Fatalf("connection secret of %d bytes", len(res.conSecret))
						}
						if sa.Stale() {
							t.Fatal("authorizer stale right after use")
						}
						t.Logf("%s client.%s: OSD ticket %v key, challenge answered, secret %d bytes",
							cl, ck.name, tk.SessionKey.Type, len(res.conSecret))
						captureState{gid: cli.GlobalID(), prev: tk, nonce: sa.nonce}.write(t, cl+"-"+ck.name+"-"+modeName+"-osd", info, cli, "osd", res)
					})
				}
			}
		})
	}
}

func TestIntegrationWrongKey(t *testing.T) {
	for _, cl := range authClusters {
		t.Run(cl, func(t *testing.T) {
			c := cephtest.Need(t, cl)
			mon := monAddr(t, c)
			real := loadClient(t, c.Keyring(), "admin")
			for _, typ := range []KeyType{KeyAES, KeyAES256KRB5} {
				secret := make([]byte, map[KeyType]int{KeyAES: 16, KeyAES256KRB5: 32}[typ])
				for i := range secret {
					secret[i] = byte(i * 7)
				}
				bad, err := NewCryptoKey(typ, secret, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{"admin", "nosuchuser"} {
					cli := NewClient(entity.Name{Type: entity.TypeClient, ID: name}, bad)
					start := time.Now()
					_, err := preauth(context.Background(), t, mon, cli.MonAuth())
					el := time.Since(start)
					if !errors.Is(err, ErrPermission) {
						t.Fatalf("%v key for client.%s: got %v, want ErrPermission", typ, name, err)
					}
					if el > 5*time.Second {
						t.Fatalf("rejection took %v", el)
					}
					t.Logf("%v key for client.%s rejected in %v: %v", typ, name, el.Round(time.Millisecond), err)
				}
			}
			_ = real
		})
	}
}

// TestIntegrationSecureRequired: a cluster with ms_mode=secure refuses a
// crc-only offer with AUTH_BAD_METHOD, and picks secure from the default offer.
func TestIntegrationSecureRequired(t *testing.T) {
	c := cephtest.Need(t, "pacific-secure")
	mon := monAddr(t, c)
	cli := loadClient(t, c.Keyring(), "admin")
	_, err := preauth(context.Background(), t, mon, cli.MonAuth(ModeCRC))
	if !errors.Is(err, ErrBadMethod) || errors.Is(err, ErrPermission) {
		t.Fatalf("crc-only offer: %v", err)
	}
	t.Logf("crc-only offer: %v", err)
	res, err := preauth(context.Background(), t, mon, cli.MonAuth())
	if err != nil {
		t.Fatal(err)
	}
	if res.done.ConMode != ModeSecure || len(res.conSecret) < 40 {
		t.Fatalf("mode %d, secret %d bytes", res.done.ConMode, len(res.conSecret))
	}
}
