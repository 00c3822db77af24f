package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandTreesIndependent: each newRootCmd is a tree of its own; the
// flags one run parses are not seen by another tree.
func TestCommandTreesIndependent(t *testing.T) {
	flag := func(root *cobra.Command, path []string, persistent bool, name string) string {
		t.Helper()
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		fs := c.Flags()
		if persistent {
			fs = c.PersistentFlags()
		}
		return fs.Lookup(name).Value.String()
	}
	a := newRootCmd()
	var out bytes.Buffer
	a.SetOut(&out)
	a.SetArgs([]string{"--id", "someone", "rbd", "-p", "apool", "ls", "--help"})
	if err := a.Execute(); err != nil || !strings.Contains(out.String(), "List images") {
		t.Fatalf("rbd ls --help: %v, %q", err, out.String())
	}
	if id, pool := flag(a, nil, true, "id"), flag(a, []string{"rbd"}, true, "pool"); id != "someone" || pool != "apool" {
		t.Fatalf("tree a: --id %q, -p %q", id, pool)
	}
	b := newRootCmd()
	if id, pool := flag(b, nil, true, "id"), flag(b, []string{"rbd"}, true, "pool"); id != "" || pool != "" {
		t.Fatalf("a new tree sees --id %q, -p %q from another", id, pool)
	}
}
