package incarnation

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPreviousAndRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owner")
	ctx := context.Background()
	d, err := Acquire(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Previous("fsid client.1") {
		t.Fatal("first incarnation sees a previous client")
	}
	for _, tok := range []string{"fsid client.1", "fsid client.2"} {
		if err := d.Record(tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Record("two\nlines"); err == nil {
		t.Fatal("a token with a newline was accepted")
	}
	if d.Previous("fsid client.1") {
		t.Fatal("own client reported as previous")
	}
	d.Close()

	d2, err := Acquire(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for _, tok := range []string{"fsid client.1", "fsid client.2"} {
		if !d2.Previous(tok) {
			t.Errorf("second incarnation does not know %q", tok)
		}
	}
	if d2.Previous("fsid client.3") || d2.Previous("other client.1") {
		t.Error("unrecorded token reported as previous")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestExclusive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owner")
	d, err := Acquire(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description: a second open in
	// the same process conflicts like another process would.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Acquire: %v, want ErrBusy", err)
	}
	got := make(chan error, 1)
	go func() {
		d2, err := Acquire(context.Background(), path)
		if err == nil {
			d2.Close()
		}
		got <- err
	}()
	d.Close()
	if err := <-got; err != nil {
		t.Fatalf("Acquire after the holder closed: %v", err)
	}
}

func TestKeepsNewest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "owner")
	var b strings.Builder
	for i := range keep + 10 {
		fmt.Fprintf(&b, "tok%d\n", i)
	}
	b.WriteString(strings.Repeat("x", maxLine+1) + "\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Acquire(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// The overlong line made the file unreadable: it starts over.
	if d.Previous("tok0") || d.Previous(fmt.Sprintf("tok%d", keep+9)) {
		t.Fatal("damaged file's tokens kept")
	}
	b.Reset()
	for i := range keep + 10 {
		fmt.Fprintf(&b, "tok%d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err = Acquire(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Previous("tok9") || !d.Previous("tok10") || !d.Previous(fmt.Sprintf("tok%d", keep+9)) {
		t.Fatal("did not keep exactly the newest tokens")
	}
	raw, _ := os.ReadFile(path)
	if n := strings.Count(string(raw), "\n"); n != keep {
		t.Fatalf("file has %d lines, want %d", n, keep)
	}
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "owner")
	d, err := Acquire(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Record("fsid client.7"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file still there after Remove: %v", err)
	}
	d2, err := Acquire(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if d2.Previous("fsid client.7") {
		t.Fatal("a removed state's clients are still reported")
	}
	var nilDir *Dir
	if nilDir.Close() != nil || nilDir.Remove() != nil {
		t.Fatal("nil Dir")
	}
}
