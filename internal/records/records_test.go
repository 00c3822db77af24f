package records

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteReadRemove(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "state")}
	if names, err := d.Names(); err != nil || len(names) != 0 {
		t.Fatalf("Names of a missing directory: %v, %v", names, err)
	}
	if _, err := d.Read("a.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read of a missing record: %v", err)
	}
	if err := d.WriteJSON("a.json", map[string]int{"v": 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.Write("a.json", []byte("second\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := d.Read("a.json"); err != nil || string(b) != "second\n" {
		t.Errorf("Read = %q, %v", b, err)
	}
	if st, _ := os.Stat(d.Path); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode())
	}
	if st, _ := os.Stat(filepath.Join(d.Path, "a.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v, want 0600", st.Mode())
	}
	// A crash in the middle of a write leaves a temporary file and the old
	// record: readers see the old one, Names never the temporary file.
	if err := os.WriteFile(filepath.Join(d.Path, tempPrefix+"9-a.json"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(d.Path, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if names, err := d.Names(); err != nil || strings.Join(names, ",") != "a.json" {
		t.Errorf("Names = %v, %v; want [a.json]", names, err)
	}
	if b, _ := d.Read("a.json"); string(b) != "second\n" {
		t.Errorf("record after a torn write: %q", b)
	}
	if err := d.Remove("a.json"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("a.json"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	for _, bad := range []string{"", ".hidden", tempPrefix + "x", "a/b"} {
		if err := d.Write(bad, nil); err == nil {
			t.Errorf("Write(%q) accepted", bad)
		}
	}
	if err := (Dir{}).Write("a", nil); err == nil {
		t.Error("Write without a directory accepted")
	}
}

// TestWriteLeavesNoTemp: completed writes leave only the records.
func TestWriteLeavesNoTemp(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	for i := range 20 {
		if err := d.WriteJSON("r.json", i); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(d.Path)
	if len(ents) != 1 || ents[0].Name() != "r.json" {
		t.Errorf("directory holds %v", ents)
	}
}

func TestReadBounded(t *testing.T) {
	d := Dir{Path: t.TempDir(), MaxSize: 8}
	if err := d.Write("big", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read("big"); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("oversized record read: %v", err)
	}
}

func TestList(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	for name, body := range map[string]string{"1.rec": "1", "2.rec": "x", "3.rec": "3", "other": "4"} {
		if err := d.Write(name, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := List(d, func(n string) bool { return strings.HasSuffix(n, ".rec") }, func(n string, b []byte) (string, error) {
		if string(b) == "x" {
			return "", errors.New("bad")
		}
		return n + "=" + string(b), nil
	})
	if strings.Join(got, " ") != "1.rec=1 3.rec=3" {
		t.Errorf("List = %v", got)
	}
	if err == nil || !strings.Contains(err.Error(), "2.rec: bad") {
		t.Errorf("List error %v, want one naming 2.rec", err)
	}
}

func TestRemoveTemps(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if err := d.Write("keep.json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	old, young := filepath.Join(d.Path, tempPrefix+"1-a.json"), filepath.Join(d.Path, tempPrefix+"2-b.json")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("torn"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, then, then); err != nil {
		t.Fatal(err)
	}
	if n, err := d.RemoveTemps(time.Minute); err != nil || n != 1 {
		t.Errorf("RemoveTemps(1m) = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a young temporary file was removed: %v", err)
	}
	if n, err := d.RemoveTemps(0); err != nil || n != 1 {
		t.Errorf("RemoveTemps(0) = %d, %v; want 1", n, err)
	}
	if names, _ := d.Names(); len(names) != 1 {
		t.Errorf("records after RemoveTemps: %v", names)
	}
	if n, err := (Dir{Path: filepath.Join(d.Path, "missing")}).RemoveTemps(0); n != 0 || err != nil {
		t.Errorf("RemoveTemps of a missing directory: %d, %v", n, err)
	}
}
