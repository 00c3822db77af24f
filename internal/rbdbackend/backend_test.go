package rbdbackend

import (
	"errors"
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
