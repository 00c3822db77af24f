package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
)

const sampleConf = `
; a comment
# another
[global]
	fsid = ee0104fd-d78c-4527-bc54-8ae7ecf3cbfc
	mon host = [v2:127.0.0.1:7500,v1:127.0.0.1:7501]   ; trailing comment
auth_client_required = cephx
log file = "/var/log/ceph/#odd;name.log"
long value = a \
  b

[client]
	keyring = /etc/ceph/$cluster.$name.keyring
	ms-mon-client-mode = secure crc

[client.rbd]
	mon_host = 10.0.0.1
`

func TestParse(t *testing.T) {
	f, err := Parse(strings.NewReader(sampleConf))
	if err != nil {
		t.Fatal(err)
	}
	admin := entity.Name{Type: entity.TypeClient, ID: "admin"}
	rbd := entity.Name{Type: entity.TypeClient, ID: "rbd"}
	for _, tt := range []struct {
		name       entity.Name
		key, value string
	}{
		{admin, "mon_host", "[v2:127.0.0.1:7500,v1:127.0.0.1:7501]"},
		{admin, "mon host", "[v2:127.0.0.1:7500,v1:127.0.0.1:7501]"},
		{admin, "mon-host", "[v2:127.0.0.1:7500,v1:127.0.0.1:7501]"},
		{rbd, "mon host", "10.0.0.1"},
		{admin, "log_file", "/var/log/ceph/#odd;name.log"},
		{admin, "long value", "a   b"},
		{admin, "ms_mon_client_mode", "secure crc"},
		{admin, "keyring", "/etc/ceph/$cluster.$name.keyring"},
	} {
		got, ok := f.Get(tt.name, tt.key)
		if !ok || got != tt.value {
			t.Errorf("Get(%s, %q) = %q, %v; want %q", tt.name, tt.key, got, ok, tt.value)
		}
	}
	if _, ok := f.Get(admin, "nope"); ok {
		t.Error("missing key found")
	}
	if got := fmt.Sprint(f.SectionNames()); got != "[global client client.rbd]" {
		t.Errorf("sections %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"[global\nx=1", "[global]\njust words", "[]\n", "[g]\nk = \"open"} {
		if _, err := Parse(strings.NewReader(s)); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: err %v, want ErrSyntax", s, err)
		}
	}
}

type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %s", host)
}

func TestParseMonHost(t *testing.T) {
	r := fakeResolver{"mon.example": {netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}}
	for _, tt := range []struct{ in, want string }{
		{"10.0.0.1", "[v2:10.0.0.1:3300/0]"},
		{"10.0.0.1:3300", "[v2:10.0.0.1:3300/0]"},
		{"10.0.0.1:6789", "[v2:10.0.0.1:3300/0]"},
		{"10.0.0.1:7000", "[v2:10.0.0.1:7000/0]"},
		{"v2:10.0.0.1:7500/0", "[v2:10.0.0.1:7500/0]"},
		{"v2:10.0.0.1", "[v2:10.0.0.1:3300/0]"},
		{"v1:10.0.0.1:6789/5", "[v2:10.0.0.1:3300/5]"},
		{"[v2:127.0.0.1:7500,v1:127.0.0.1:7501]", "[v2:127.0.0.1:7500/0]"},
		{"[v1:127.0.0.1:6789/0]", "[v2:127.0.0.1:3300/0]"},
		{"[::1]:3300", "[v2:[::1]:3300/0]"},
		{"[::1]", "[v2:[::1]:3300/0]"},
		{"::1", "[v2:[::1]:3300/0]"},
		{"v2:[::1]:7000/0", "[v2:[::1]:7000/0]"},
		{"mon.example:6789", "[v2:10.1.0.1:3300/0] [v2:[fd00::1]:3300/0]"},
		{"10.0.0.1, 10.0.0.2;10.0.0.3  10.0.0.1", "[v2:10.0.0.1:3300/0] [v2:10.0.0.2:3300/0] [v2:10.0.0.3:3300/0]"},
		{"[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0],[v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0]", "[v2:10.0.0.1:3300/0] [v2:10.0.0.2:3300/0]"},
	} {
		mons, err := ParseMonHost(context.Background(), tt.in, r)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		var parts []string
		for _, m := range mons {
			parts = append(parts, fmt.Sprint(m.Addrs))
		}
		if got := strings.Join(parts, " "); got != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"", " , ", "[v2:1.2.3.4:3300", "1.2.3.4:0", "1.2.3.4:99999", "v3:1.2.3.4", "no such host!", "unknown.host", "v2:host.name:3300", ":3300"} {
		if _, err := ParseMonHost(context.Background(), bad, r); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestResolveCephCSIStyle(t *testing.T) {
	// ceph-csi: monitors "host:port" list, user id, key; no file at all.
	t.Setenv("CEPH_CONF", "")
	c, err := Resolve(context.Background(), Options{MonHost: "127.0.0.1:6789,127.0.0.2:3300", Name: "csi-user", Key: "AQ==", ConfPath: ""})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name.String() != "client.csi-user" || c.Key != "AQ==" || len(c.Mons) != 2 || c.MsMode != ModePreferCRC {
		t.Errorf("%+v", c)
	}
}

func TestResolveFromFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ceph.conf")
	keyfile := filepath.Join(dir, "key")
	os.WriteFile(keyfile, []byte("AQBkey==\n"), 0o600)
	os.WriteFile(conf, []byte("[global]\nmon host = 10.0.0.1:7500\n[client.x]\nkeyfile = "+keyfile+"\nms client mode = secure\n"), 0o644)
	c, err := Resolve(context.Background(), Options{ConfPath: conf, Name: "client.x"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Key != "AQBkey==" || c.MsMode != ModeSecure || fmt.Sprint(c.Mons[0].Addrs) != "[v2:10.0.0.1:7500/0]" {
		t.Errorf("%+v", c)
	}
	if want := "/etc/ceph/ceph.client.x.keyring"; c.Keyrings[0] != want {
		t.Errorf("keyring search %v, want %s first", c.Keyrings, want)
	}
	if _, err := Resolve(context.Background(), Options{ConfPath: conf, MsMode: "fast"}); err == nil {
		t.Error("bad ms mode accepted")
	}
	os.WriteFile(conf, []byte("[global]\nfsid = x\n"), 0o644)
	if _, err := Resolve(context.Background(), Options{ConfPath: conf}); !errors.Is(err, ErrNoMonitors) {
		t.Errorf("no mon host: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sampleConf)
	f.Add("[global]\nmon_host = \"a;b\" # c\n")
	f.Fuzz(func(t *testing.T, s string) {
		cf, err := Parse(strings.NewReader(s))
		if err == nil && cf == nil {
			t.Fatal("nil file without error")
		}
	})
}

func FuzzParseMonHost(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "[v2:127.0.0.1:7500,v1:127.0.0.1:7501]", "v1:[::1]:6789/3", "a.b:6789, 10.0.0.2:3300", "[::1]"} {
		f.Add(s)
	}
	r := fakeResolver{"a.b": {netip.MustParseAddr("10.9.9.9")}}
	f.Fuzz(func(t *testing.T, s string) {
		mons, err := ParseMonHost(context.Background(), s, r)
		if err != nil {
			return
		}
		for _, m := range mons {
			if len(m.Addrs) == 0 {
				t.Fatalf("%q: monitor without addresses", s)
			}
			for _, a := range m.Addrs {
				if a.Type != entity.AddrMsgr2 || a.IP.Port() == 0 {
					t.Fatalf("%q: bad address %v", s, a)
				}
			}
		}
	})
}

// TestResolveKeyFile: Options.KeyFile (ceph's --keyfile) is read, after
// an explicit Key and before the file's key and keyfile.
func TestResolveKeyFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ceph.conf")
	kf := filepath.Join(dir, "client.key")
	os.WriteFile(kf, []byte("  AQBfromfile==\n"), 0o600)
	os.WriteFile(conf, []byte("[global]\nmon host = 10.0.0.1\n[client.admin]\nkey = AQBfromconf==\n"), 0o644)
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{ConfPath: conf}, "AQBfromconf=="},
		{Options{ConfPath: conf, KeyFile: kf}, "AQBfromfile=="},
		{Options{ConfPath: conf, KeyFile: kf, Key: "AQBexplicit=="}, "AQBexplicit=="},
	} {
		cl, err := Resolve(context.Background(), c.opts)
		if err != nil || cl.Key != c.want {
			t.Errorf("%+v: key %q, %v; want %q", c.opts, cl.Key, err, c.want)
		}
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, bad := range []string{filepath.Join(dir, "missing"), empty} {
		if _, err := Resolve(context.Background(), Options{ConfPath: conf, KeyFile: bad}); err == nil {
			t.Errorf("keyfile %s accepted", bad)
		}
	}
}

// TestSecretsRedacted: Options and Client never print their key.
func TestSecretsRedacted(t *testing.T) {
	const key = "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw=="
	o := Options{Name: "client.admin", Key: key, MonHost: "10.0.0.1"}
	c := Client{Key: key, Keyrings: []string{"/etc/ceph/keyring"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{o, &o, c, &c, []Options{o}, struct{ C *Client }{&c}} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, key) || strings.Contains(out, fmt.Sprintf("%x", key)) {
				t.Errorf("%s prints the key: %s", verb, out)
			}
		}
	}
	if out := fmt.Sprintf("%+v", o); !strings.Contains(out, Redacted) || !strings.Contains(out, "client.admin") {
		t.Errorf("%%+v: %s", out)
	}
	if out := fmt.Sprintf("%+v", Options{Name: "x"}); strings.Contains(out, Redacted) {
		t.Errorf("an empty key prints as redacted: %s", out)
	}
}
