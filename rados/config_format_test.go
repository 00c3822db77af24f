package rados

import (
	"fmt"
	"strings"
	"testing"
)

// TestConfigRedacted: a Config never prints its Key, with any verb.
func TestConfigRedacted(t *testing.T) {
	const key = "AQBNdgJrgkv8KxAAZS+CRxjeVRbPj6uCo2bUmw=="
	cfg := Config{User: "admin", Key: key, Monitors: []string{"10.0.0.1"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		for _, v := range []any{cfg, &cfg, []Config{cfg}, map[string]Config{"a": cfg}} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, key) || strings.Contains(out, fmt.Sprintf("%x", key)) {
				t.Errorf("%s prints the key: %s", verb, out)
			}
		}
	}
	if out := fmt.Sprintf("%+v", cfg); !strings.Contains(out, "<redacted>") || !strings.Contains(out, "admin") {
		t.Errorf("%%+v: %s", out)
	}
}
