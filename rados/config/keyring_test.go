package config

import (
	"errors"
	"reflect"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

// TestParseKeyring: the sections Ceph's own tools write — [mon.] (empty
// id), daemons, clients — with caps, both comment kinds, inline comments,
// quoted values and [global], which is skipped.
func TestParseKeyring(t *testing.T) {
	entries, err := ParseKeyring([]byte(`# written by ceph-authtool
[global]
	auth supported = cephx
[mon.]
	key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==
	caps mon = "allow *"
; a daemon
[osd.0]
	key = "AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU="   # quoted, with a comment
	caps_osd = "allow * ; not a comment"
[client.admin]
key=AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw== ; trailing comment
	caps mds = "allow *"
	caps mgr = "allow *"
	auid = 0
[client.caps-only]
	caps mon = "profile rbd"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []KeyringEntry{
		{Name: entity.Name{Type: entity.TypeMon, ID: ""}, Key: "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==",
			Caps: map[string]string{"mon": "allow *"}},
		{Name: entity.Name{Type: entity.TypeOSD, ID: "0"}, Key: "AgBVdgJrwZFYICAAAveBg1LHYxnjqQbE2aQLeReViDNOCk4K/IrgdzbXDsU=",
			Caps: map[string]string{"osd": "allow * ; not a comment"}},
		{Name: entity.Name{Type: entity.TypeClient, ID: "admin"}, Key: "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==",
			Caps: map[string]string{"mds": "allow *", "mgr": "allow *"}},
		{Name: entity.Name{Type: entity.TypeClient, ID: "caps-only"}, Caps: map[string]string{"mon": "profile rbd"}},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Fatalf("got  %+v\nwant %+v", entries, want)
	}
	if s := entries[0].Name.String(); s != "mon." {
		t.Errorf("mon. prints as %q", s)
	}
	for _, bad := range []string{
		"key = AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw==\n", // outside a section
		"[client.admin\n",
		"[client.admin]\njunk\n",
		"[nosuchtype.x]\n",
		"[admin]\nkey = x\n", // no type
		"[client.admin]\nkey = \"unterminated\n",
	} {
		if _, err := ParseKeyring([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want ErrSyntax", bad, err)
		}
	}
	if _, err := ParseKeyring(make([]byte, MaxKeyringSize+1)); !errors.Is(err, ErrSyntax) {
		t.Errorf("oversized keyring: %v", err)
	}
}
