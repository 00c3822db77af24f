package attach

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/nbd"
)

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "state")}
	if recs, err := s.List(); err != nil || len(recs) != 0 {
		t.Fatalf("List of a missing dir: %v, %v", recs, err)
	}
	r3 := &Record{Index: 3, ID: "vol-3", Image: "rbd/img3", Size: 1 << 30, BlockSize: 512, Connections: 2,
		DeadConnTimeoutSeconds: 120, Created: time.Unix(1700000000, 0).UTC()}
	r1 := &Record{Index: 1, ID: "vol-1", Image: "file:/x", Size: 4096, BlockSize: 512, Connections: 1, ReadOnly: true}
	for _, r := range []*Record{r3, r1} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(s.Dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode())
	}
	if st, _ := os.Stat(filepath.Join(s.Dir, "nbd3.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", st.Mode())
	}
	// Foreign and temporary files are ignored.
	os.WriteFile(filepath.Join(s.Dir, "README"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.Dir, ".tmp-nbd9.json"), []byte("{"), 0o600)

	recs, err := s.List()
	if err != nil || len(recs) != 2 || recs[0].Index != 1 || recs[1].Index != 3 {
		t.Fatalf("List = %+v, %v", recs, err)
	}
	if *recs[1] != *r3 {
		t.Errorf("round trip: %+v != %+v", recs[1], r3)
	}
	for _, q := range []string{"vol-3", "/dev/nbd3", "nbd3"} {
		if r, err := s.Find(q); err != nil || r.Index != 3 {
			t.Errorf("Find(%q) = %v, %v", q, r, err)
		}
	}
	if _, err := s.Find("vol-9"); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Find(missing): %v", err)
	}
	if _, err := s.Load(7); !errors.Is(err, ErrNoRecord) {
		t.Errorf("Load(missing): %v", err)
	}
	if err := s.Remove(3); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(3); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	// A corrupt record is reported but does not hide the others.
	os.WriteFile(filepath.Join(s.Dir, "nbd5.json"), []byte(`{"version":1,"index":5}`), 0o600)
	recs, err = s.List()
	if err == nil || len(recs) != 1 || recs[0].Index != 1 {
		t.Errorf("List with a bad record = %+v, %v", recs, err)
	}
	// A record in the wrong file name is refused.
	b, _ := os.ReadFile(filepath.Join(s.Dir, "nbd1.json"))
	os.WriteFile(filepath.Join(s.Dir, "nbd2.json"), b, 0o600)
	if _, err := s.List(); err == nil {
		t.Error("misnamed record accepted")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"index":3,"id":"v","image":"rbd/i","size":4096,"blockSize":512,"connections":1,"deadConnTimeoutSeconds":120,"created":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"version":1,"index":-1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err == nil && (r.Index < 0 || r.ID == "" || r.Connections < 1 || r.Connections > maxConnections) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]int{"/dev/nbd0": 0, "nbd7": 7} {
		if n, err := parseDevice(in); err != nil || n != want {
			t.Errorf("parseDevice(%q) = %d, %v", in, n, err)
		}
	}
	for _, in := range []string{"vol-1", "/dev/nbd", "nbd+1", "7", "/dev/sda"} {
		if _, err := parseDevice(in); err == nil {
			t.Errorf("parseDevice(%q): no error", in)
		}
	}
}

// TestNewRemovesStaleTemps: a temporary record file a crash left behind
// is deleted when a Manager starts on the directory, unless it is recent
// enough to be another process's write in flight.
func TestNewRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	stale, fresh := filepath.Join(dir, ".tmp-1-nbd3.json"), filepath.Join(dir, ".tmp-2-nbd4.json")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte(`{"version":1,`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	m, err := New(context.Background(), Config{StateDir: dir, Factory: func(context.Context, string, bool) (nbd.Backend, error) {
		return nil, errors.New("unused")
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary record still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent temporary record was removed: %v", err)
	}
}
