package cephx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

func TestParseKeyring(t *testing.T) {
	kr, err := ParseKeyring([]byte(`# written by ceph auth get
[client.admin]
	key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==
	caps mds = "allow *"
	caps mon = "allow *"
; another
[client.admin256]
key="AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU="
[osd.0]
	key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==
`))
	if err != nil {
		t.Fatal(err)
	}
	a, err := kr.Get(entity.Name{Type: entity.TypeClient, ID: "admin"})
	if err != nil || a.Type != KeyAES || len(a.Secret()) != 16 {
		t.Fatalf("admin: %v %v", a, err)
	}
	b, err := kr.Get(entity.Name{Type: entity.TypeClient, ID: "admin256"})
	if err != nil || b.Type != KeyAES256KRB5 || len(b.Secret()) != 32 {
		t.Fatalf("admin256: %v %v", b, err)
	}
	if _, err := kr.Get(entity.Name{Type: entity.TypeOSD, ID: "0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Get(entity.Name{Type: entity.TypeClient, ID: "nobody"}); !errors.Is(err, ErrKeyring) {
		t.Fatalf("missing entity: %v", err)
	}
	for _, bad := range []string{
		"key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==\n", // outside a section
		"[client.admin\n",
		"[client.admin]\nkey = notbase64!\n",
		"[client.admin]\njunk\n",
		"[nosuchtype.x]\n",
	} {
		if _, err := ParseKeyring([]byte(bad)); !errors.Is(err, ErrKeyring) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keyring")
	if err := os.WriteFile(p, []byte("[client.x]\n\tkey = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := LoadKeyring(p)
	if err != nil || len(kr) != 1 {
		t.Fatalf("%v %v", kr, err)
	}
	if _, err := LoadKeyring(p + ".missing"); !errors.Is(err, ErrKeyring) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestParseKeyringDaemonSections: [mon.] (an entity with an empty id, as
// every mon keyring has) and caps-only sections are read, each entity
// picked by name.
func TestParseKeyringDaemonSections(t *testing.T) {
	kr, err := ParseKeyring([]byte(`[mon.]
	key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==
	caps mon = "allow *"
[client.admin]
	key = AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU= # the admin
[client.nokey]
	caps mon = "allow r"
`))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := kr.Get(entity.Name{Type: entity.TypeMon}); err != nil || k.Type != KeyAES {
		t.Fatalf("mon.: %v %v", k, err)
	}
	if k, err := kr.Get(entity.Name{Type: entity.TypeClient, ID: "admin"}); err != nil || k.Type != KeyAES256KRB5 {
		t.Fatalf("client.admin: %v %v", k, err)
	}
	if _, err := kr.Get(entity.Name{Type: entity.TypeClient, ID: "nokey"}); !errors.Is(err, ErrKeyring) {
		t.Fatalf("a section without a key: %v", err)
	}
}
