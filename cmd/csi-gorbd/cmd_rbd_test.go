package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

func TestParseImageSpec(t *testing.T) {
	for in, want := range map[string]imageSpec{
		"img":          {"rbd", "img", ""},
		"p/img":        {"p", "img", ""},
		"p/img@s":      {"p", "img", "s"},
		"img@snap-1.x": {"rbd", "img", "snap-1.x"},
	} {
		got, err := parseImageSpec(in, "", 0)
		if err != nil || got != want {
			t.Errorf("parseImageSpec(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, c := range []struct {
		in   string
		snap int
	}{{"p/", 0}, {"img", 1}, {"img@s", -1}, {"@s", 0}} {
		if got, err := parseImageSpec(c.in, "", c.snap); err == nil {
			t.Errorf("parseImageSpec(%q, %d) = %+v, want an error", c.in, c.snap, got)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in    string
		shift uint
		want  uint64
	}{
		{"64", 20, 64 << 20}, {"64M", 20, 64 << 20}, {"1G", 20, 1 << 30}, {"2GiB", 20, 2 << 30},
		{"4096", 0, 4096}, {"4K", 0, 4096}, {"512B", 20, 512}, {"1T", 20, 1 << 40},
	} {
		if got, err := parseBytes(c.in, c.shift); err != nil || got != c.want {
			t.Errorf("parseBytes(%q, %d) = %d, %v; want %d", c.in, c.shift, got, err, c.want)
		}
	}
	for _, in := range []string{"", "M", "12X", "-1", "99999999999999999999", "20000000P"} {
		if got, err := parseBytes(in, 20); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, got)
		}
	}
}

// rbdEnv runs our binary and the cluster's rbd CLI against one cluster.
type rbdEnv struct {
	t    *testing.T
	cl   *cephtest.Cluster
	bin  string
	pool string
}

func newRBDEnv(t *testing.T, name string) *rbdEnv {
	cl := cephtest.Need(t, name)
	if cl.Get("CEPH_CLI") == "" {
		needCephCLI(t)
	}
	pool := cl.Get("CEPH_POOL")
	if pool == "" {
		pool = "rbd"
	}
	return &rbdEnv{t: t, cl: cl, bin: binary(t), pool: pool}
}

// ours runs `csi-gorbd rbd ARGS` and fails the test on a non-zero exit.
func (e *rbdEnv) ours(args ...string) string {
	e.t.Helper()
	out, stderr, code := run(e.t, e.bin, append([]string{"-c", e.cl.Conf(), "-k", e.cl.Keyring(), "rbd", "-p", e.pool}, args...)...)
	if code != 0 {
		e.t.Fatalf("csi-gorbd rbd %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// theirs runs the cluster's rbd CLI and fails the test on a non-zero exit.
func (e *rbdEnv) theirs(args ...string) string {
	e.t.Helper()
	out, stderr, code := cephTool(e.t, e.cl, "rbd", append([]string{"-p", e.pool}, args...)...)
	if code != 0 {
		e.t.Fatalf("rbd %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// name returns a unique image name and registers its removal (snapshots,
// then the image, with the reference CLI; errors ignored: it may be gone).
func (e *rbdEnv) name(tag string) string {
	n := fmt.Sprintf("gorbdcli-%s-%d-%x", tag, os.Getpid(), rand.Uint32())
	e.t.Cleanup(func() {
		cephTool(e.t, e.cl, "rbd", "-p", e.pool, "snap", "purge", n)
		cephTool(e.t, e.cl, "rbd", "-p", e.pool, "rm", n)
	})
	return n
}

func jsonInto(t *testing.T, s string, v any) {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
}

var rbdClusters = []string{"pacific", "tentacle"}

// TestRBDCreateInfo: images made by `csi-gorbd rbd create` look right to
// `rbd info --format json`, and our `info --format json` agrees with it.
func TestRBDCreateInfo(t *testing.T) {
	for _, cluster := range rbdClusters {
		t.Run(cluster, func(t *testing.T) {
			e := newRBDEnv(t, cluster)
			for _, c := range []struct {
				tag  string
				args []string
				want map[string]any
			}{
				{"def", []string{"--size", "32"}, map[string]any{"size": 32 << 20, "order": 22, "objects": 8,
					"features": []any{"layering", "exclusive-lock", "object-map", "fast-diff", "deep-flatten"}}},
				{"small", []string{"--size", "24M", "--object-size", "1M", "--image-feature", "layering,exclusive-lock"},
					map[string]any{"size": 24 << 20, "order": 20, "object_size": 1 << 20, "objects": 24,
						"features": []any{"layering", "exclusive-lock"}}},
				{"stripe", []string{"-s", "16M", "--image-feature", "layering", "--image-feature", "striping",
					"--stripe-unit", "64K", "--stripe-count", "4"},
					map[string]any{"size": 16 << 20, "stripe_unit": 64 << 10, "stripe_count": 4,
						"features": []any{"layering", "striping"}}},
			} {
				name := e.name(c.tag)
				e.ours(append([]string{"create", name}, c.args...)...)
				var theirs, ours map[string]any
				jsonInto(t, e.theirs("info", "--format", "json", name), &theirs)
				jsonInto(t, e.ours("info", "--format", "json", name), &ours)
				for k, v := range c.want {
					if fmt.Sprint(theirs[k]) != fmt.Sprint(v) {
						t.Errorf("%s: rbd info %s = %v, want %v", c.tag, k, theirs[k], v)
					}
				}
				for _, k := range []string{"name", "id", "size", "objects", "order", "object_size", "snapshot_count",
					"block_name_prefix", "format", "features", "flags", "stripe_unit", "stripe_count"} {
					if fmt.Sprint(ours[k]) != fmt.Sprint(theirs[k]) {
						t.Errorf("%s: info %s: ours %v, rbd %v", c.tag, k, ours[k], theirs[k])
					}
				}
				var ls []string
				jsonInto(t, e.ours("ls", "--format", "json"), &ls)
				found := false
				for _, n := range ls {
					found = found || n == name
				}
				if !found {
					t.Errorf("ls --format json lacks %s", name)
				}
				e.ours("resize", name, "--size", "40M")
				var after map[string]any
				jsonInto(t, e.theirs("info", "--format", "json", name), &after)
				if fmt.Sprint(after["size"]) != fmt.Sprint(40<<20) {
					t.Errorf("%s: after resize rbd info size = %v", c.tag, after["size"])
				}
				if _, stderr, code := run(t, e.bin, "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "rbd", "-p", e.pool, "resize", name, "-s", "8"); code == 0 ||
					!strings.Contains(stderr, "--allow-shrink") {
					t.Errorf("%s: shrink without --allow-shrink: exit %d, %q", c.tag, code, stderr)
				}
				e.ours("resize", name, "-s", "8", "--allow-shrink")
				after = nil
				jsonInto(t, e.theirs("info", "--format", "json", name), &after)
				if fmt.Sprint(after["size"]) != fmt.Sprint(8<<20) {
					t.Errorf("%s: after shrink rbd info size = %v", c.tag, after["size"])
				}
				e.ours("rm", name)
				if _, _, code := cephTool(t, e.cl, "rbd", "-p", e.pool, "info", name); code == 0 {
					t.Errorf("%s: image still there after our rm", c.tag)
				}
			}
			// rename: rbd sees the new name, the old one is gone, ours
			// refuses an existing destination.
			src, dst := e.name("rensrc"), e.name("rendst")
			e.ours("create", src, "--size", "4M")
			e.ours("rename", src, dst)
			if got := e.theirs("ls"); strings.Contains(got, src+"\n") || !strings.Contains(got, dst) {
				t.Errorf("rbd ls after rename:\n%s", got)
			}
			e.theirs("create", src, "--size", "1M")
			if _, stderr, code := run(t, e.bin, "-c", e.cl.Conf(), "-k", e.cl.Keyring(), "rbd", "-p", e.pool, "rename", dst, src); code == 0 ||
				!strings.Contains(stderr, "already exists") {
				t.Errorf("rename onto an existing image: exit %d, %q", code, stderr)
			}
		})
	}
}

// TestRBDExportImport: data moves byte-identically between our
// export/import and rbd's, through files and stdout.
func TestRBDExportImport(t *testing.T) {
	for _, cluster := range rbdClusters {
		t.Run(cluster, func(t *testing.T) {
			e := newRBDEnv(t, cluster)
			dir := t.TempDir()
			// 10 MiB + 3 sectors: not a whole number of objects, with a
			// zero hole (object 1) that import must leave sparse.
			data := make([]byte, 10<<20+1536)
			r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
			for i := range data {
				if i < 4<<20 || i >= 8<<20 {
					data[i] = byte(r.Uint32())
				}
			}
			src := filepath.Join(dir, "src.raw")
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}

			a := e.name("imp-rbd")
			e.theirs("import", src, a)
			ourFile := filepath.Join(dir, "ours.raw")
			e.ours("export", a, ourFile)
			if got, _ := os.ReadFile(ourFile); !bytes.Equal(got, data) {
				t.Errorf("our export of an rbd import differs (%d bytes, want %d)", len(got), len(data))
			}
			if got := e.ours("export", "--workers", "3", a, "-"); got != string(data) {
				t.Errorf("our export to stdout differs (%d bytes)", len(got))
			}

			b := e.name("imp-ours")
			e.ours("import", "--object-size", "1M", src, b)
			theirFile := filepath.Join(dir, "theirs.raw")
			e.theirs("export", b, theirFile)
			if got, _ := os.ReadFile(theirFile); !bytes.Equal(got, data) {
				t.Errorf("rbd export of our import differs (%d bytes, want %d)", len(got), len(data))
			}
			var info map[string]any
			jsonInto(t, e.theirs("info", "--format", "json", b), &info)
			if fmt.Sprint(info["size"]) != fmt.Sprint(len(data)) || fmt.Sprint(info["order"]) != "20" {
				t.Errorf("our import: rbd info size %v order %v", info["size"], info["order"])
			}

			// Import from stdin (unknown length: the image grows, then is
			// trimmed to the data's length).
			c := e.name("imp-stdin")
			cmd := []string{"-c", e.cl.Conf(), "-k", e.cl.Keyring(), "rbd", "-p", e.pool, "import", "-", c}
			if _, stderr, code := runStdin(t, data, e.bin, cmd...); code != 0 {
				t.Fatalf("import -: exit %d: %s", code, stderr)
			}
			e.theirs("export", c, filepath.Join(dir, "stdin.raw"))
			if got, _ := os.ReadFile(filepath.Join(dir, "stdin.raw")); !bytes.Equal(got, data) {
				t.Errorf("rbd export of our stdin import differs (%d bytes, want %d)", len(got), len(data))
			}
		})
	}
}

// TestRBDSnapCloneTrash: snapshots, clones and the trash as rbd sees them.
func TestRBDSnapCloneTrash(t *testing.T) {
	for _, cluster := range rbdClusters {
		t.Run(cluster, func(t *testing.T) {
			e := newRBDEnv(t, cluster)
			parent := e.name("parent")
			child := e.name("child")
			e.ours("create", parent, "--size", "8M")
			e.ours("snap", "create", parent+"@s1")
			e.ours("snap", "create", e.pool+"/"+parent+"@s2")
			type snap struct {
				ID   uint64 `json:"id"`
				Name string `json:"name"`
				Size uint64 `json:"size"`
			}
			var theirs, ours []snap
			jsonInto(t, e.theirs("snap", "ls", "--format", "json", parent), &theirs)
			jsonInto(t, e.ours("snap", "ls", "--format", "json", parent), &ours)
			if len(theirs) != 2 || theirs[0].Name != "s1" || theirs[1].Name != "s2" || theirs[0].Size != 8<<20 {
				t.Errorf("rbd snap ls: %+v", theirs)
			}
			if fmt.Sprint(ours) != fmt.Sprint(theirs) {
				t.Errorf("snap ls: ours %+v, rbd %+v", ours, theirs)
			}
			if got := e.ours("snap", "ls", parent); !strings.HasPrefix(got, "SNAPID  NAME  SIZE   ") || !strings.Contains(got, "  s2    8 MiB") {
				t.Errorf("snap ls plain:\n%s", got)
			}

			e.ours("clone", "--rbd-default-clone-format", "2", parent+"@s1", child)
			if got := strings.TrimSpace(e.theirs("children", parent+"@s1")); got != e.pool+"/"+child {
				t.Errorf("rbd children = %q, want %s/%s", got, e.pool, child)
			}
			if got := strings.TrimSpace(e.ours("children", parent+"@s1")); got != e.pool+"/"+child {
				t.Errorf("our children = %q", got)
			}
			var info map[string]any
			jsonInto(t, e.theirs("info", "--format", "json", child), &info)
			p, _ := info["parent"].(map[string]any)
			if p == nil || p["image"] != parent || p["snapshot"] != "s1" {
				t.Errorf("rbd info parent = %v", info["parent"])
			}
			if fmt.Sprint(info["features"]) != "[layering exclusive-lock object-map fast-diff deep-flatten operations]" {
				t.Errorf("clone features = %v, want rbd's defaults", info["features"])
			}
			var oinfo map[string]any
			jsonInto(t, e.ours("info", "--format", "json", child), &oinfo)
			if op, _ := oinfo["parent"].(map[string]any); op == nil || op["image"] != parent || op["snapshot"] != "s1" ||
				fmt.Sprint(op["overlap"]) != fmt.Sprint(p["overlap"]) {
				t.Errorf("our info parent = %v, rbd %v", oinfo["parent"], p)
			}
			e.ours("flatten", child)
			info = nil
			jsonInto(t, e.theirs("info", "--format", "json", child), &info)
			if info["parent"] != nil {
				t.Errorf("after flatten, rbd info parent = %v", info["parent"])
			}
			if got := strings.TrimSpace(e.theirs("children", parent+"@s1")); got != "" {
				t.Errorf("after flatten, rbd children = %q", got)
			}

			e.ours("snap", "rm", parent+"@s2")
			theirs = nil
			jsonInto(t, e.theirs("snap", "ls", "--format", "json", parent), &theirs)
			if len(theirs) != 1 || theirs[0].Name != "s1" {
				t.Errorf("after snap rm, rbd snap ls: %+v", theirs)
			}

			e.trashMoveRemove(t, child)
			// protect / unprotect as rbd sees them.
			e.ours("snap", "protect", parent+"@s1")
			theirs = nil
			var prot []struct {
				Name      string `json:"name"`
				Protected string `json:"protected"`
			}
			jsonInto(t, e.theirs("snap", "ls", "--format", "json", parent), &prot)
			if len(prot) != 1 || prot[0].Protected != "true" {
				t.Errorf("rbd snap ls after our protect: %+v", prot)
			}
			if got := e.ours("snap", "ls", parent); !strings.Contains(got, " yes ") {
				t.Errorf("our snap ls does not show the protection:\n%s", got)
			}
			e.ours("snap", "unprotect", parent+"@s1")
			prot = nil
			jsonInto(t, e.theirs("snap", "ls", "--format", "json", parent), &prot)
			if len(prot) != 1 || prot[0].Protected != "false" {
				t.Errorf("rbd snap ls after our unprotect: %+v", prot)
			}
		})
	}
}

// trashMoveRemove: our trash mv, ls and rm of the image name, as rbd sees them.
func (e *rbdEnv) trashMoveRemove(t *testing.T, name string) {
	type entry struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	var before map[string]any
	jsonInto(t, e.theirs("info", "--format", "json", name), &before)
	e.ours("trash", "mv", name)
	var tt, ot []entry
	jsonInto(t, e.theirs("trash", "ls", "--format", "json"), &tt)
	jsonInto(t, e.ours("trash", "ls", "--format", "json"), &ot)
	sort.Slice(tt, func(i, j int) bool { return tt[i].ID < tt[j].ID })
	found := false
	for _, x := range tt {
		found = found || (x.Name == name && x.ID == before["id"])
	}
	if !found {
		t.Errorf("rbd trash ls lacks %s (%v): %+v", name, before["id"], tt)
	}
	if fmt.Sprint(ot) != fmt.Sprint(tt) {
		t.Errorf("trash ls: ours %+v, rbd %+v", ot, tt)
	}
	id := fmt.Sprint(before["id"])
	e.t.Cleanup(func() { cephTool(t, e.cl, "rbd", "-p", e.pool, "trash", "rm", id) })
	e.ours("trash", "rm", id)
	tt = nil
	jsonInto(t, e.theirs("trash", "ls", "--format", "json"), &tt)
	for _, x := range tt {
		if x.ID == id {
			t.Errorf("trash entry %s still listed after our trash rm", id)
		}
	}
}

// TestRBDMetaRestoreRollback: image-meta, trash restore and snap rollback
// through our CLI, checked with rbd's.
func TestRBDMetaRestoreRollback(t *testing.T) {
	for _, cluster := range rbdClusters {
		t.Run(cluster, func(t *testing.T) {
			e := newRBDEnv(t, cluster)
			name := e.name("meta")
			e.ours("create", name, "--size", "4M")
			e.ours("image-meta", "set", name, "owner", "team-e")
			e.theirs("image-meta", "set", name, "theirs", "v1")
			if got := strings.TrimSpace(e.theirs("image-meta", "get", name, "owner")); got != "team-e" {
				t.Errorf("rbd image-meta get = %q", got)
			}
			var m map[string]string
			jsonInto(t, e.ours("image-meta", "list", "--format", "json", name), &m)
			if m["owner"] != "team-e" || m["theirs"] != "v1" || len(m) != 2 {
				t.Errorf("our image-meta list = %v", m)
			}
			if got := e.ours("image-meta", "list", name); got != e.theirs("image-meta", "list", name) {
				t.Errorf("image-meta list: ours\n%s\nrbd\n%s", got, e.theirs("image-meta", "list", name))
			}
			e.ours("image-meta", "remove", name, "owner")
			if _, _, code := cephTool(t, e.cl, "rbd", "-p", e.pool, "image-meta", "get", name, "owner"); code == 0 {
				t.Error("key still there after our image-meta remove")
			}

			// rollback: write, snapshot, overwrite, roll back; rbd export
			// shows the snapshot's data.
			dir := t.TempDir()
			os.Chmod(dir, 0o777)
			a := bytes.Repeat([]byte("A"), 4<<20)
			b := bytes.Repeat([]byte("B"), 1<<20)
			fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			os.WriteFile(fa, a, 0o644)
			os.WriteFile(fb, b, 0o644)
			rb := e.name("rollback")
			e.theirs("import", "--no-progress", fa, rb)
			e.ours("snap", "create", rb+"@s")
			e.theirs("bench", "--io-type", "write", "--io-size", "4096", "--io-total", "64K", "--io-pattern", "rand", rb)
			e.ours("snap", "rollback", rb+"@s")
			out := filepath.Join(dir, "out")
			e.theirs("export", "--no-progress", rb, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, a) {
				t.Error("rbd export after our rollback differs from the snapshot")
			}

			// trash mv by rbd, restore by us under a new name.
			tr := e.name("trash")
			e.ours("create", tr, "--size", "1M")
			var info map[string]any
			jsonInto(t, e.theirs("info", "--format", "json", tr), &info)
			e.theirs("trash", "mv", tr)
			e.ours("trash", "restore", "--image", tr+"-back", fmt.Sprint(info["id"]))
			e.t.Cleanup(func() { cephTool(t, e.cl, "rbd", "-p", e.pool, "rm", tr+"-back") })
			jsonInto(t, e.theirs("info", "--format", "json", tr+"-back"), &info)
			if got := e.theirs("trash", "ls"); strings.Contains(got, fmt.Sprint(info["id"])) {
				t.Errorf("still in the trash after restore:\n%s", got)
			}
		})
	}
}

var benchSummary = regexp.MustCompile(`(?m)^elapsed: \d+   ops: (\d+)   ops/sec: [0-9.]+   bytes/sec: [0-9.]+ [KMG]?i?B/s$`)

// TestRBDBench: bench runs every I/O type and prints rbd's summary line
// with the requested number of operations.
func TestRBDBench(t *testing.T) {
	for _, cluster := range rbdClusters {
		t.Run(cluster, func(t *testing.T) {
			e := newRBDEnv(t, cluster)
			name := e.name("bench")
			e.ours("create", name, "--size", "16M")
			for _, c := range [][]string{
				{"--io-type", "write", "--io-size", "4K", "--io-threads", "8", "--io-total", "2M", "--io-pattern", "rand"},
				{"--io-type", "read", "--io-size", "64K", "--io-total", "8M"},
				{"--io-type", "rw", "--io-size", "4096", "--io-threads", "4", "--io-total", "1M", "--io-pattern", "rand"},
			} {
				out := e.ours(append([]string{"bench", name}, c...)...)
				if !strings.HasPrefix(out, "bench  type ") || !strings.Contains(out, "  SEC       OPS   OPS/SEC   BYTES/SEC\n") {
					t.Errorf("bench %v: header missing:\n%s", c, out)
				}
				m := benchSummary.FindStringSubmatch(out)
				if m == nil {
					t.Errorf("bench %v: no summary line:\n%s", c, out)
					continue
				}
				want := map[string]string{"write": "512", "read": "128", "rw": "256"}[c[1]]
				if m[1] != want {
					t.Errorf("bench %v: ops %s, want %s", c, m[1], want)
				}
				if c[1] == "rw" && (!strings.Contains(out, "read_ops: ") || !strings.Contains(out, "write_ops: ")) {
					t.Errorf("bench rw: no read/write split:\n%s", out)
				}
			}
			// The data written by bench is visible to rbd (the image is
			// no longer all zeroes).
			exp := filepath.Join(t.TempDir(), "b.raw")
			e.theirs("export", name, exp)
			if got, _ := os.ReadFile(exp); len(got) != 16<<20 || allZero(got) {
				t.Errorf("rbd export after bench: %d bytes, all zero %v", len(got), allZero(got))
			}
		})
	}
}

// runStdin is run with stdin fed from data.
func runStdin(t *testing.T, data []byte, name string, args ...string) (string, string, int) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sh := fmt.Sprintf("exec %q \"$@\" < %q", name, f.Name())
	return run(t, "sh", append([]string{"-c", sh, "sh"}, args...)...)
}
