package csiceph

import (
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd/encryption"
)

func TestParseEncryption(t *testing.T) {
	good := []struct {
		p    map[string]string
		want *Encryption
	}{
		{map[string]string{}, nil},
		{map[string]string{"encrypted": "false", "encryptionKMSID": "x"}, nil},
		{map[string]string{"encrypted": "true"}, &Encryption{KMSID: "default", Layout: encryption.LayoutDMCrypt}},
		{map[string]string{"encrypted": "true", "encryptionKMSID": "m", "encryptionType": "block"},
			&Encryption{KMSID: "m", Layout: encryption.LayoutDMCrypt}},
		{map[string]string{"encrypted": "True", "encryptionLayout": "librbd"}, &Encryption{KMSID: "default", Layout: encryption.LayoutLibrbd}},
	}
	for _, c := range good {
		got, err := ParseEncryption(c.p)
		if err != nil || (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%v: %+v %v, want %+v", c.p, got, err, c.want)
		}
	}
	bad := map[string]string{"yes": "true or false", "": "true or false"}
	for v, msg := range bad {
		if _, err := ParseEncryption(map[string]string{"encrypted": v}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("encrypted=%q: %v", v, err)
		}
	}
	for _, p := range []map[string]string{
		{"encrypted": "true", "encryptionType": "file"},
		{"encrypted": "true", "encryptionType": ""},
		{"encrypted": "true", "encryptionLayout": "qcow"},
	} {
		if _, err := ParseEncryption(p); err == nil {
			t.Errorf("%v accepted", p)
		}
	}
	if _, err := ParseEncryption(map[string]string{"encrypted": "true", "encryptionType": "file"}); !strings.Contains(err.Error(), "fscrypt") {
		t.Errorf("file: %v", err)
	}
}
