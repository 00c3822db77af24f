package rbdbackend

import (
	"context"
	"errors"
	"syscall"
	"testing"
)

func TestParseSpec(t *testing.T) {
	good := map[string]Spec{
		"rbd/vol":        {Pool: "rbd", Image: "vol"},
		"rbd/vol@snap-1": {Pool: "rbd", Image: "vol", Snap: "snap-1"},
	}
	for in, want := range good {
		got, err := ParseSpec(in)
		if err != nil || got != want {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"", "vol", "/vol", "rbd/", "rbd/vol@", "rbd/ns/vol", "rbd/@s", "rbd/v@a@b"} {
		if _, err := ParseSpec(in); !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseSpec(%q) err = %v, want ErrBadSpec", in, err)
		}
	}
}

// fakeVolume answers every command with err and counts the calls.
type fakeVolume struct {
	err   error
	calls int
}

func (f *fakeVolume) ReadAt(context.Context, []byte, uint64) (int, error) { f.calls++; return 0, f.err }
func (f *fakeVolume) WriteAt(context.Context, []byte, uint64) (int, error) {
	f.calls++
	return 0, f.err
}
func (f *fakeVolume) Discard(context.Context, uint64, uint64) error     { f.calls++; return f.err }
func (f *fakeVolume) WriteZeroes(context.Context, uint64, uint64) error { f.calls++; return f.err }
func (f *fakeVolume) Size() uint64                                      { return 1 << 20 }

// TestFencedLatches: once the cluster answers ESHUTDOWN (blocklisted),
// no later command reaches the cluster, even when it would succeed again
// (the blocklist entry expired): every one fails with EIO.
func TestFencedLatches(t *testing.T) {
	ctx := context.Background()
	f := &fakeVolume{}
	b := &Backend{vol: f}
	if err := b.WriteAt(ctx, make([]byte, 512), 0, false); err != nil || b.Fenced() {
		t.Fatalf("healthy write: %v fenced=%v", err, b.Fenced())
	}
	f.err = &osdErr{syscall.ESHUTDOWN}
	err := b.WriteAt(ctx, make([]byte, 512), 0, false)
	if !errors.Is(err, syscall.EIO) || !errors.Is(err, ErrFenced) || !errors.Is(err, syscall.ESHUTDOWN) || !b.Fenced() {
		t.Fatalf("blocklisted write: %v fenced=%v", err, b.Fenced())
	}
	f.err = nil // the entry expired: the cluster would take writes again
	calls := f.calls
	for name, op := range map[string]func() error{
		"read":    func() error { return b.ReadAt(ctx, make([]byte, 512), 0) },
		"write":   func() error { return b.WriteAt(ctx, make([]byte, 512), 0, true) },
		"discard": func() error { return b.Discard(ctx, 0, 512) },
		"zeroes":  func() error { return b.WriteZeroes(ctx, 0, 512, false) },
	} {
		if err := op(); !errors.Is(err, syscall.EIO) {
			t.Errorf("%s after the fence: %v, want EIO", name, err)
		}
	}
	if f.calls != calls {
		t.Errorf("%d commands reached the cluster after the fence", f.calls-calls)
	}
}

// osdErr is an error matching an errno, as rados' errors do.
type osdErr struct{ errno syscall.Errno }

func (e *osdErr) Error() string   { return "osd: write: " + e.errno.Error() }
func (e *osdErr) Is(t error) bool { return t == e.errno }
