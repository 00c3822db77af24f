package cephx_test

// End-to-end tests through the real messenger: complete msgr2 sessions
// (AUTH_SIGNATURE keyed with our session key, AES-GCM keyed with our
// connection secret in secure mode, CLIENT_IDENT) with mons and OSDs, and
// ticket renewal with MAuth over an open mon session.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
	"github.com/csi-gorbd/csi-gorbd/rados/cephx"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
	"github.com/csi-gorbd/csi-gorbd/rados/mon"
)

// cephx satisfies the messenger's AuthClient without importing it.
var (
	_ messenger.AuthClient = (*cephx.MonAuth)(nil)
	_ messenger.AuthClient = (*cephx.ServiceAuth)(nil)
)

func e2eClient(t *testing.T, keyring, id string) *cephx.Client {
	t.Helper()
	kr, err := cephx.LoadKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	name := entity.Name{Type: entity.TypeClient, ID: id}
	k, err := kr.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return cephx.NewClient(name, k)
}

func e2eMon(t *testing.T, c *cephtest.Cluster) entity.Addr {
	t.Helper()
	a, err := entity.ParseAddr("v2:" + strings.Split(c.Get("CEPH_MON_V2"), ",")[0] + "/0")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var bootRE = regexp.MustCompile(`osd\.0 \[(v2:[0-9.:]+/[0-9]+)`)

func e2eOSD(t *testing.T, c *cephtest.Cluster) entity.Addr {
	t.Helper()
	log, err := os.ReadFile(filepath.Join(c.Dir, "log", "mon.a.log"))
	if err != nil {
		cephtest.Missing(t, "no mon log: %v", err)
	}
	m := bootRE.FindAllSubmatch(log, -1)
	if len(m) == 0 {
		cephtest.Missing(t, "OSD address not in mon log")
	}
	a, err := entity.ParseAddr(string(m[len(m)-1][1]))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type e2eKey struct{ keyring, id string }

func e2eKeys(c *cephtest.Cluster) []e2eKey {
	ks := []e2eKey{{c.Keyring(), "admin"}}
	if p := c.Get("CEPH_ADMIN256_KEYRING"); p != "" {
		ks = append(ks, e2eKey{p, "admin256"})
	}
	return ks
}

func dial(ctx context.Context, t *testing.T, addr entity.Addr, peer entity.Type, auth messenger.AuthClient, gid uint64, dispatch func(*messenger.Message)) (*messenger.Conn, error) {
	t.Helper()
	if dispatch == nil {
		dispatch = func(*messenger.Message) {}
	}
	return messenger.Dial(ctx, messenger.Config{
		Addr: addr, PeerType: peer, Auth: auth,
		Features: mon.ClientFeatures, GlobalID: gid, Dispatch: dispatch,
	})
}

// captureRenewal writes an MAuthReply to testdata/captured in the schema of
// capture_test.go (GORBD_CEPHX_CAPTURE=1).
func captureRenewal(t *testing.T, c *cephtest.Cluster, cli *cephx.Client, what string, mode uint32, gid uint64, prev *cephx.Ticket, rep *mon.MAuthReply) {
	t.Helper()
	if os.Getenv("GORBD_CEPHX_CAPTURE") != "1" {
		return
	}
	kind := map[string]string{"auth renewal": "renew-auth", "service tickets": "renew-principal"}[what]
	x := map[string]any{
		"cluster": c.Name, "version": c.Get("CEPH_VERSION"), "entity": cli.Name().String(),
		"key": cli.Key().Base64(), "kind": kind, "global_id": gid,
		"prev": map[string]any{"service": uint8(entity.TypeAuth), "session_key": prev.SessionKey.Base64(),
			"secret_id": prev.SecretID, "blob": hex.EncodeToString(prev.Blob)},
		"done_global_id": rep.GlobalID, "done_con_mode": mode, "done_payload": hex.EncodeToString(rep.Payload),
	}
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	name := c.Name + "-" + strings.TrimPrefix(cli.Name().String(), "client.") + "-" +
		map[uint32]string{1: "crc", 2: "secure"}[mode] + "-" + kind + ".json"
	if err := os.WriteFile(filepath.Join("testdata", "captured", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMessengerSessions(t *testing.T) {
	for _, cl := range []string{"pacific", "reef", "tentacle", "tentacle256"} {
		t.Run(cl, func(t *testing.T) {
			c := cephtest.Need(t, cl)
			monAddr, osdAddr := e2eMon(t, c), e2eOSD(t, c)
			for _, k := range e2eKeys(c) {
				for _, mode := range []uint32{cephx.ModeCRC, cephx.ModeSecure} {
					t.Run(k.id+map[uint32]string{1: "/crc", 2: "/secure"}[mode], func(t *testing.T) {
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						defer cancel()
						cli := e2eClient(t, k.keyring, k.id)
						replies := make(chan *messenger.Message, 4)
						mc, err := dial(ctx, t, monAddr, entity.TypeMon, cli.MonAuth(mode), 0, func(m *messenger.Message) {
							if m.Type == mon.MsgAuthReply {
								replies <- m
							}
						})
						if err != nil {
							t.Fatalf("mon session: %v", err)
						}
						defer mc.Close()
						if mc.Peer().ConMode != mode {
							t.Fatalf("mon con mode %d", mc.Peer().ConMode)
						}
						gid := cli.GlobalID()

						oc, err := dial(ctx, t, osdAddr, entity.TypeOSD, cli.ServiceAuth(entity.TypeOSD, mode), gid, nil)
						if err != nil {
							t.Fatalf("osd session: %v", err)
						}
						oc.Close()

						renew := func(what string, payload []byte) {
							t.Helper()
							prevAuth, _ := cli.Ticket(entity.TypeAuth)
							m := &messenger.Message{Type: mon.MsgAuth, Version: 1,
								Front: (&mon.MAuth{Protocol: cephx.MethodCephx, Payload: payload}).Encode()}
							if err := mc.Send(ctx, m); err != nil {
								t.Fatal(err)
							}
							select {
							case r := <-replies:
								rep, err := mon.DecodeMAuthReply(r.Front)
								if err != nil {
									t.Fatal(err)
								}
								if err := cli.HandleRenewal(rep.Result, rep.GlobalID, rep.Payload); err != nil {
									t.Fatalf("%s: %v (%q)", what, err, rep.Message)
								}
								captureRenewal(t, c, cli, what, mode, gid, prevAuth, rep)
							case <-ctx.Done():
								t.Fatalf("%s: no MAuthReply", what)
							}
						}

						// GET_AUTH_SESSION_KEY over the live session.
						old, _ := cli.Ticket(entity.TypeAuth)
						p, err := cli.BuildAuthRenewal()
						if err != nil {
							t.Fatal(err)
						}
						renew("auth renewal", p)
						now, _ := cli.Ticket(entity.TypeAuth)
						if now == old || cli.GlobalID() != gid {
							t.Fatalf("AUTH ticket not renewed (gid %d -> %d)", gid, cli.GlobalID())
						}

						// GET_PRINCIPAL_SESSION_KEY for a dropped OSD ticket.
						cli.InvalidateTicket(entity.TypeOSD)
						if cli.Need()&uint32(entity.TypeOSD) == 0 {
							t.Fatal("OSD ticket not needed after invalidation")
						}
						proto, p, err := cli.BuildRenewal()
						if err != nil || proto != cephx.MethodCephx || len(p) < 2 || p[0] != 0x00 || p[1] != 0x02 {
							t.Fatalf("BuildRenewal = %d %x %v", proto, p, err)
						}
						renew("service tickets", p)
						if cli.NeedsRenewal() {
							t.Fatalf("still need %#x", cli.Need())
						}
						oc, err = dial(ctx, t, osdAddr, entity.TypeOSD, cli.ServiceAuth(entity.TypeOSD, mode), gid, nil)
						if err != nil {
							t.Fatalf("osd session with the renewed ticket: %v", err)
						}
						oc.Close()

						// A new mon session reclaims the global_id with the renewed ticket.
						a := cli.MonAuth(mode)
						mc2, err := dial(ctx, t, monAddr, entity.TypeMon, a, gid, nil)
						if err != nil {
							t.Fatalf("reclaim session: %v", err)
						}
						mc2.Close()
						if !a.Reclaiming() || cli.GlobalID() != gid {
							t.Fatalf("reclaim: %v, gid %d -> %d", a.Reclaiming(), gid, cli.GlobalID())
						}
					})
				}
			}

			t.Run("wrong-key", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				bad, _ := cephx.NewCryptoKey(cephx.KeyAES, []byte("0123456789abcdef"), time.Now())
				cli := cephx.NewClient(entity.Name{Type: entity.TypeClient, ID: "admin"}, bad)
				_, err := dial(ctx, t, monAddr, entity.TypeMon, cli.MonAuth(), 0, nil)
				if !errors.Is(err, cephx.ErrPermission) {
					t.Fatalf("wrong key: %v", err)
				}
			})
		})
	}
}
