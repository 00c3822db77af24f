package crush

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mappingRun is one "# run" block of a .mappings file.
type mappingRun struct {
	args   string
	numRep int
	weight map[int]float64
	lines  []string // expected "CRUSH rule R x X [...]" lines
}

func parseMappings(t *testing.T, path string) []*mappingRun {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var runs []*mappingRun
	sc := bufio.NewScanner(bytes.NewReader(f))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# run "); ok {
			r := &mappingRun{args: rest, weight: map[int]float64{}}
			fs := strings.Fields(rest)
			for i := 0; i < len(fs); i++ {
				switch fs[i] {
				case "--num-rep":
					r.numRep, _ = strconv.Atoi(fs[i+1])
				case "--weight":
					dev, _ := strconv.Atoi(fs[i+1])
					w, _ := strconv.ParseFloat(fs[i+2], 64)
					r.weight[dev] = w
					i += 2
				}
			}
			runs = append(runs, r)
			continue
		}
		if len(runs) == 0 {
			t.Fatalf("%s: mapping before any run header", path)
		}
		runs[len(runs)-1].lines = append(runs[len(runs)-1].lines, line)
	}
	return runs
}

// weights builds the device weight vector the way CrushTester does: every
// device 0x10000 unless overridden.
func (r *mappingRun) weights(m *Map) []uint32 {
	w := make([]uint32, m.MaxDevices)
	for i := range w {
		w[i] = 0x10000
	}
	for dev, f := range r.weight {
		if dev < len(w) {
			w[dev] = uint32(f * 0x10000)
		}
	}
	return w
}

func formatVec(v []int32) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(x)))
	}
	sb.WriteByte(']')
	return sb.String()
}

func loadMap(t testing.TB, path string) *Map {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// TestCrushtoolMappings replays every stored crushtool --test run and, when
// crushtool is installed, checks the stored output is what crushtool prints.
func TestCrushtoolMappings(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mappings")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	crushtool, _ := exec.LookPath("crushtool")
	for _, mf := range files {
		name := strings.TrimSuffix(filepath.Base(mf), ".mappings")
		t.Run(name, func(t *testing.T) {
			mapPath := filepath.Join("testdata", name+".crush")
			m := loadMap(t, mapPath)
			ws := m.NewWorkspace()
			for _, run := range parseMappings(t, mf) {
				// MSR maps need Squid+; gen-msr.sh records them with
				// the Tentacle crushtool instead of the host's.
				if crushtool != "" && name != "msr" {
					args := append([]string{"-i", mapPath, "--test", "--show-mappings"}, strings.Fields(run.args)...)
					out, err := exec.Command(crushtool, args...).Output()
					if err != nil {
						t.Fatalf("crushtool %v: %v", args, err)
					}
					var live []string
					for _, l := range strings.Split(string(out), "\n") {
						if strings.HasPrefix(l, "CRUSH rule") {
							live = append(live, l)
						}
					}
					if strings.Join(live, "\n") != strings.Join(run.lines, "\n") {
						t.Fatalf("stored output of %q differs from crushtool's; rerun testdata/gen.sh", run.args)
					}
				}
				w := run.weights(m)
				res := make([]int32, run.numRep)
				bad := 0
				for _, l := range run.lines {
					var rule, x int
					var want string
					if _, err := fmt.Sscanf(l, "CRUSH rule %d x %d %s", &rule, &x, &want); err != nil {
						t.Fatalf("parse %q: %v", l, err)
					}
					n := m.DoRule(rule, int32(x), res, w, m.ChooseArgsFor(DefaultChooseArgs), ws)
					if got := formatVec(res[:n]); got != want {
						bad++
						if bad <= 5 {
							t.Errorf("%s: rule %d x %d: got %s want %s", run.args, rule, x, got, want)
						}
					}
				}
				if bad > 0 {
					t.Errorf("%s: %d of %d mappings differ", run.args, bad, len(run.lines))
				}
			}
		})
	}
}

func TestHashUnknownType(t *testing.T) {
	if Hash2(7, 1, 2) != 0 || Hash3(7, 1, 2, 3) != 0 || Hash4(7, 1, 2, 3, 4) != 0 {
		t.Fatal("unknown hash types must give 0, as in Ceph")
	}
}

func TestCrushLnEndpoints(t *testing.T) {
	// crush_ln maps [0,0xffff] onto [0, just under 2^48]; the top value
	// is pinned to what the shipped tables give.
	if got := crushLn(0xffff); got != 0xfffff0000000 {
		t.Fatalf("crushLn(0xffff) = %#x", got)
	}
	if got := crushLn(0); got != 0 {
		t.Fatalf("crushLn(0) = %#x", got)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/odd.crush")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(good); i += 7 {
		if _, err := Decode(good[:i]); err == nil && i < 16 {
			t.Fatalf("truncated map of %d bytes decoded", i)
		}
	}
	bad := append([]byte(nil), good...)
	bad[2] = 0
	if _, err := Decode(bad); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad magic: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, n := range []string{"odd", "classes", "chooseargs", "tree", "list", "uniform", "legacy", "msr"} {
		b, err := os.ReadFile("testdata/" + n + ".crush")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		ws := m.NewWorkspace()
		res := make([]int32, 4)
		w := make([]uint32, m.MaxDevices)
		for i := range w {
			w[i] = 0x10000
		}
		for r := range m.Rules {
			for x := int32(0); x < 4; x++ {
				m.DoRule(r, x, res, w, m.ChooseArgsFor(1), ws)
			}
		}
	})
}
