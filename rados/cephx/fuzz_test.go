package cephx

// Fuzz targets for every decoder. Seeds: the exchanges captured from the
// real clusters (testdata/captured) plus the files in testdata/fuzz/.
// Run one with e.g.: go test ./rados/cephx -run '^$' -fuzz FuzzMonAuthDone -fuzztime 30s

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/rados/encoding"
	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// fuzzCaptures loads the captured exchanges (without failing when absent).
func fuzzCaptures(f *testing.F) []*capturedExchange {
	files, _ := filepath.Glob(filepath.Join("testdata", "captured", "*.json"))
	var out []*capturedExchange
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		x := &capturedExchange{}
		if err := json.Unmarshal(b, x); err != nil {
			f.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// fuzzKeys are fixed keys of both types the targets decrypt with; the
// captured admin keys come first so that captured payloads decode fully.
func fuzzKey(f *testing.F, kind string) (*CryptoKey, []*capturedExchange) {
	var xs []*capturedExchange
	var key *CryptoKey
	for _, x := range fuzzCaptures(f) {
		if x.Kind != kind {
			continue
		}
		k, err := ParseKey(x.Key)
		if err != nil {
			f.Fatal(err)
		}
		if key == nil {
			key = k
		}
		if k.Equal(key) {
			xs = append(xs, x)
		}
	}
	if key == nil {
		key, _ = NewCryptoKey(KeyAES, []byte("0123456789abcdef"), time.Time{})
	}
	return key, xs
}

func FuzzParseKey(f *testing.F) {
	for _, x := range fuzzCaptures(f) {
		f.Add(x.Key)
	}
	f.Add("AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		k2, err := ParseKey(k.Base64())
		if err != nil || !k2.Equal(k) {
			t.Fatalf("re-encoding %q: %v", s, err)
		}
	})
}

func FuzzDecodeCryptoKey(f *testing.F) {
	f.Add(unhex(f, "01007b000000c8010000100031323334353637383930313233343536"))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := encoding.NewDecoder(b)
		k, err := DecodeCryptoKey(d)
		if err == nil && len(k.secret()) > maxKeyLen {
			t.Fatal("oversized secret accepted")
		}
	})
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("[client.admin]\n\tkey = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==\n\tcaps mon = \"allow *\"\n"))
	f.Add([]byte("# c\n[client.x]\nkey=AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU=\n"))
	f.Add([]byte("[client.admin\nkey = x\n"))
	f.Add([]byte("[mon.]\n\tkey = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw== ; c\n\tcaps mon = \"allow *\"\n[osd.0]\ncaps osd = \"allow *\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kr, err := ParseKeyring(b)
		if err != nil {
			return
		}
		for n, k := range kr {
			if k == nil || n == "" {
				t.Fatalf("entry %q: %v", n, k)
			}
		}
	})
}

func FuzzOpen(f *testing.F) {
	keys := []*CryptoKey{}
	for _, k := range testKeys(f) {
		keys = append(keys, k)
		c, _ := Seal(k, UsageAuthorizeReply, []byte("seed payload"))
		f.Add(uint8(len(keys)-1), c)
	}
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, which uint8, c []byte) {
		k := keys[int(which)%len(keys)]
		p, err := Open(k, UsageAuthorizeReply, c)
		if err == nil && len(p) > len(c) {
			t.Fatal("plaintext longer than ciphertext")
		}
	})
}

// FuzzTicketReply decodes ticket replies, both raw and with a fuzzed
// plaintext sealed inside a well-formed "blob for me".
func FuzzTicketReply(f *testing.F) {
	key, xs := fuzzKey(f, "mon")
	for _, x := range xs {
		p := unhex(f, x.DonePayload)
		f.Add(p[6:], []byte{})
	}
	f.Add([]byte{1, 1, 0, 0, 0}, []byte{1, 1, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw, inner []byte) {
		none := func(entity.Type) *CryptoKey { return nil }
		parseTicketReply(encoding.NewDecoder(raw), key, none, time.Now())

		e := encoding.NewEncoder(nil)
		e.U8(1)
		e.U32(1)
		e.U32(uint32(entity.TypeAuth))
		e.U8(1)
		if err := SealLen(e, key, UsageTicketSessionKey, inner); err != nil {
			t.Fatal(err)
		}
		e.Raw(raw)
		ts, err := parseTicketReply(encoding.NewDecoder(e.Bytes()), key, func(entity.Type) *CryptoKey { return key }, time.Now())
		if err == nil && (len(ts) != 1 || ts[0].SessionKey == nil) {
			t.Fatalf("bad result %+v", ts)
		}
	})
}

// FuzzMonAuthDone feeds AUTH_DONE payloads to a MonAuth holding a captured key.
func FuzzMonAuthDone(f *testing.F) {
	key, xs := fuzzKey(f, "mon")
	for _, x := range xs {
		f.Add(unhex(f, x.DonePayload))
	}
	f.Add([]byte{0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 0xf3, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		c := NewClient(entity.Name{Type: entity.TypeClient, ID: "admin"}, key)
		a := c.MonAuth()
		a.AuthRequest()
		a.HandleReplyMore([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0})
		sk, _, err := a.HandleDone(4100, ModeCRC, p)
		if err == nil && len(sk) == 0 {
			t.Fatal("empty session key")
		}
	})
}

// FuzzHandleRenewal feeds MAuthReply payloads to a client holding a captured
// AUTH ticket.
func FuzzHandleRenewal(f *testing.F) {
	key, xs := fuzzKey(f, "renew-auth")
	var prev *capturedExchange
	for _, x := range xs {
		f.Add(unhex(f, x.DonePayload))
		if prev == nil {
			prev = x
		}
	}
	for _, x := range fuzzCaptures(f) {
		if x.Kind == "renew-principal" {
			f.Add(unhex(f, x.DonePayload))
		}
	}
	f.Add([]byte{0, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		c := NewClient(entity.Name{Type: entity.TypeClient, ID: "admin"}, key)
		if prev != nil {
			k, err := ParseKey(prev.Prev.SessionKey)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			c.globalID = prev.GlobalID
			c.tickets[entity.TypeAuth] = &Ticket{Service: entity.TypeAuth, SessionKey: k,
				Received: now, Expires: now.Add(time.Hour), RenewAfter: now.Add(time.Minute)}
		}
		c.HandleRenewal(0, 0, p)
	})
}

// FuzzServiceAuth feeds an OSD's challenge and AUTH_DONE to a ServiceAuth.
func FuzzServiceAuth(f *testing.F) {
	var x0 *capturedExchange
	for _, x := range fuzzCaptures(f) {
		if x.Kind == "osd" {
			if x0 == nil {
				x0 = x
			}
			if x.Prev.SessionKey == x0.Prev.SessionKey {
				f.Add(unhex(f, x.ReplyMore[0]), unhex(f, x.DonePayload))
			}
		}
	}
	f.Add([]byte{}, []byte{0, 0, 0, 0})
	sk, _ := NewCryptoKey(KeyAES, []byte("0123456789abcdef"), time.Time{})
	var nonce uint64
	if x0 != nil {
		sk, _ = ParseKey(x0.Prev.SessionKey)
		nonce = x0.Nonce
	}
	f.Fuzz(func(t *testing.T, challenge, done []byte) {
		c := NewClient(entity.Name{Type: entity.TypeClient, ID: "admin"}, sk)
		now := time.Now()
		c.tickets[entity.TypeOSD] = &Ticket{Service: entity.TypeOSD, SessionKey: sk, SecretID: 2, Blob: []byte{1},
			Received: now, Expires: now.Add(time.Hour), RenewAfter: now.Add(time.Minute)}
		a := c.ServiceAuth(entity.TypeOSD)
		if _, _, _, err := a.AuthRequest(); err != nil {
			t.Fatal(err)
		}
		a.nonce = nonce
		a.HandleReplyMore(challenge)
		a.HandleDone(1, ModeCRC, done)
	})
}

func FuzzServerChallenge(f *testing.F) {
	for _, x := range fuzzCaptures(f) {
		if len(x.ReplyMore) > 0 && (x.Kind == "mon" || x.Kind == "reclaim") {
			f.Add(unhex(f, x.ReplyMore[0]))
		}
	}
	f.Add([]byte{9, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, p []byte) {
		parseServerChallenge(p)
	})
}
