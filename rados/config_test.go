package rados

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rados/messenger"
)

const testKey = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="

func TestResolveKeyring(t *testing.T) {
	dir := t.TempDir()
	kr := filepath.Join(dir, "keyring")
	if err := os.WriteFile(kr, []byte("[client.other]\n\tkey = "+testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := Config{Monitors: []string{"127.0.0.1:7500"}, User: "other", Keyring: kr, MsMode: MsModeSecure}.resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.name.String() != "client.other" || len(r.mons) != 1 || len(r.modes) != 1 || r.modes[0] != messenger.ModeSecure {
		t.Errorf("%+v", r)
	}
	if _, ok := r.auth.(*cephxAuth); !ok {
		t.Errorf("auth %T, want cephx", r.auth)
	}
	_, err = Config{Monitors: []string{"127.0.0.1"}, User: "admin", Keyring: kr}.resolve(ctx)
	if !errors.Is(err, ErrNoKey) {
		t.Errorf("missing entity: %v, want ErrNoKey", err)
	}
	_, err = Config{Monitors: []string{"127.0.0.1"}, Key: "not base64"}.resolve(ctx)
	if err == nil {
		t.Error("bad key accepted")
	}
	r, err = Config{Monitors: []string{"127.0.0.1"}, AuthNone: true}.resolve(ctx)
	if err != nil || r.modes[0] != messenger.ModeCRC {
		t.Errorf("auth none: %+v %v", r, err)
	}
}
