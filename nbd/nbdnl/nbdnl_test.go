package nbdnl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]int{"/dev/nbd0": 0, "nbd12": 12, "3": 3, "/dev/nbd15": 15} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/dev/sda", "nbd", "nbd-1", "nbd+1", "/dev/nbd1p1"} {
		if _, err := ParseDevice(in); err == nil {
			t.Errorf("ParseDevice(%q): no error", in)
		}
	}
	if DevicePath(4) != "/dev/nbd4" {
		t.Error(DevicePath(4))
	}
}

func TestSeconds(t *testing.T) {
	for d, want := range map[time.Duration]uint64{0: 0, -time.Second: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 2 * time.Minute: 120} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestNotSupportedError(t *testing.T) {
	err := error(&NotSupportedError{Reason: "no family", Err: errors.New("exit status 1")})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatal("errors.Is(ErrNotSupported) false")
	}
	if s := err.Error(); !strings.Contains(s, "no family") || !strings.Contains(s, "exit status 1") {
		t.Errorf("message %q", s)
	}
}

// TestDialHost runs against this machine's kernel: where it has no nbd
// support (the development host and CI) Dial must say so with
// ErrNotSupported; where it has, the family resolves and STATUS works.
// The full kernel path is tested in the VM (test/vm).
func TestDialHost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx)
	if err != nil {
		if !errors.Is(err, ErrNotSupported) {
			t.Fatalf("Dial: %v, want ErrNotSupported or success", err)
		}
		t.Logf("no kernel nbd here: %v", err)
		if _, err := Status(ctx, -1); !errors.Is(err, ErrNotSupported) {
			t.Errorf("Status: %v, want ErrNotSupported", err)
		}
		return
	}
	defer c.Close()
	if _, err := c.Status(ctx, -1); err != nil {
		t.Errorf("Status: %v", err)
	}
}

func TestConnectNeedsSize(t *testing.T) {
	c := buildConfig([]Option{WithIndex(3), WithBackendIdentifier("x")})
	if c.index != 3 || c.size != 0 || c.backend != "x" {
		t.Fatalf("%+v", c)
	}
	if buildConfig(nil).index != IndexAny {
		t.Error("default index is not IndexAny")
	}
}
