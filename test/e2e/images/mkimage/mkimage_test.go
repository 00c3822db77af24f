package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// readArchive returns the archive's files by name.
func readArchive(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = b
	}
}

type entry struct {
	typ      byte
	mode     int64
	uid      int
	linkname string
	body     string
}

func readLayer(t *testing.T, b []byte) (map[string]entry, []string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	m := map[string]entry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, order
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.ModTime.Unix() != 0 {
			t.Errorf("%s: mtime %v, want 0", h.Name, h.ModTime)
		}
		m[h.Name] = entry{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, linkname: h.Linkname, body: string(body)}
		order = append(order, h.Name)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestArchive(t *testing.T) {
	dir := t.TempDir()
	root, add, repl := archiveInput(t, dir)
	args := func(out string) []string {
		return []string{"-o", out, "-t", "registry.example.org/x/y:1.0", "-t", "registry.example.org/x/y:extra",
			"-root", root, "-add", add + ":/usr/local/bin/agent:0755", "-add", repl + ":/etc/replaced",
			"-entrypoint", `["/usr/local/bin/agent"]`, "-cmd", `["serve"]`, "-user", "65535:65535",
			"-label", "a=b", "-expose", "80", "-stop-signal", "SIGQUIT"}
	}
	out := filepath.Join(dir, "img.tar")
	if err := run(args(out)); err != nil {
		t.Fatal(err)
	}
	layerBs := checkManifest(t, readArchive(t, out))
	checkLayers(t, layerBs)

	// Same input, same image.
	out2 := filepath.Join(dir, "img2.tar")
	if err := run(args(out2)); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, b) {
		t.Errorf("two builds of the same input differ")
	}
}

// archiveInput makes a root tree with every kind of entry (directories,
// sticky bit, hard link, symlink, owner, socket) and two files to add.
func archiveInput(t *testing.T, dir string) (root, add, repl string) {
	root = filepath.Join(dir, "root")
	for _, d := range []string{"bin", "etc", "dev/pts", "proc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/busybox", "BB", 0o755)
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
	write("etc/replaced", "old", 0o644)
	write("dev/null-not-really", "x", 0o644)
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin/ls")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "etc/passwd"), 0, 42); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(root, "tmp/s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	add = filepath.Join(dir, "agent")
	if err := os.WriteFile(add, []byte("AGENT"), 0o600); err != nil {
		t.Fatal(err)
	}
	repl = filepath.Join(dir, "repl")
	if err := os.WriteFile(repl, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}

	return root, add, repl
}

// checkManifest checks manifest.json and the image config and returns
// the two layers.
func checkManifest(t *testing.T, files map[string][]byte) [2][]byte {
	var man []manifestEntry
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil || len(man) != 1 {
		t.Fatalf("manifest.json: %v %s", err, files["manifest.json"])
	}
	if !reflect.DeepEqual(man[0].RepoTags, []string{"registry.example.org/x/y:1.0", "registry.example.org/x/y:extra"}) {
		t.Errorf("tags %v", man[0].RepoTags)
	}
	cfgB := files[man[0].Config]
	if man[0].Config != sha(cfgB)+".json" {
		t.Errorf("config name %s is not its digest %s", man[0].Config, sha(cfgB))
	}
	var cfg configFile
	if err := json.Unmarshal(cfgB, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(man[0].Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 || len(cfg.History) != 2 {
		t.Fatalf("want two layers (root, added files): manifest %v, config %+v", man[0].Layers, cfg.RootFS)
	}
	var layerBs [2][]byte
	for i, l := range man[0].Layers {
		layerBs[i] = files[l]
		if d := sha(layerBs[i]); cfg.RootFS.DiffIDs[i] != "sha256:"+d || l != d+"/layer.tar" {
			t.Errorf("layer %d: name %s, diff_id %s, digest %s", i, l, cfg.RootFS.DiffIDs[i], d)
		}
	}
	c := cfg.Config
	if cfg.OS != "linux" || !reflect.DeepEqual(c.Entrypoint, []string{"/usr/local/bin/agent"}) || !reflect.DeepEqual(c.Cmd, []string{"serve"}) ||
		c.User != "65535:65535" || c.Labels["a"] != "b" || c.StopSignal != "SIGQUIT" || len(c.ExposedPorts) != 1 ||
		len(c.Env) != 1 || !strings.HasPrefix(c.Env[0], "PATH=") {
		t.Errorf("config %+v", cfg)
	}

	return layerBs
}

// checkLayers checks the root layer and the added-files layer.
func checkLayers(t *testing.T, layerBs [2][]byte) {
	gotRoot, order := readLayer(t, layerBs[0])
	wantRoot := map[string]entry{
		"bin/":         {typ: tar.TypeDir, mode: 0o755},
		"bin/busybox":  {typ: tar.TypeReg, mode: 0o755, body: "BB"},
		"bin/ls":       {typ: tar.TypeSymlink, mode: 0o777, linkname: "busybox"},
		"bin/sh":       {typ: tar.TypeLink, mode: 0o755, linkname: "bin/busybox"},
		"dev/":         {typ: tar.TypeDir, mode: 0o755},
		"etc/":         {typ: tar.TypeDir, mode: 0o755},
		"etc/passwd":   {typ: tar.TypeReg, mode: 0o644, body: "root:x:0:0::/root:/bin/sh\n"},
		"etc/replaced": {typ: tar.TypeReg, mode: 0o644, body: "old"},
		"proc/":        {typ: tar.TypeDir, mode: 0o755},
		"tmp/":         {typ: tar.TypeDir, mode: 0o1777},
	}
	for k, e := range gotRoot {
		e.uid = 0
		gotRoot[k] = e
	}
	if !reflect.DeepEqual(gotRoot, wantRoot) {
		t.Errorf("root layer:\n got %v\nwant %v", gotRoot, wantRoot)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("layer not in lexical order: %q before %q", order[i-1], order[i])
		}
	}
	if _, g := layerGid(t, layerBs[0], "etc/passwd"); g != 42 {
		t.Errorf("etc/passwd gid %d, want 42 (owners kept)", g)
	}
	added, _ := readLayer(t, layerBs[1])
	wantAdded := map[string]entry{
		"etc/":                {typ: tar.TypeDir, mode: 0o755},
		"etc/replaced":        {typ: tar.TypeReg, mode: 0o644, body: "new"},
		"usr/":                {typ: tar.TypeDir, mode: 0o755},
		"usr/local/":          {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/":      {typ: tar.TypeDir, mode: 0o755},
		"usr/local/bin/agent": {typ: tar.TypeReg, mode: 0o755, body: "AGENT"},
	}
	for k, e := range added {
		e.uid = 0
		added[k] = e
	}
	if !reflect.DeepEqual(added, wantAdded) {
		t.Errorf("added layer:\n got %v\nwant %v", added, wantAdded)
	}

}

func layerGid(t *testing.T, b []byte, name string) (int, int) {
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in layer: %v", name, err)
		}
		if h.Name == name {
			return h.Uid, h.Gid
		}
	}
}

func TestBadArgs(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-o", filepath.Join(dir, "a.tar"), "-root", dir},
		{"-o", filepath.Join(dir, "a.tar"), "-t", "busybox:1.0", "-root", dir},
		{"-o", filepath.Join(dir, "a.tar"), "-t", "registry.k8s.io/pause", "-root", dir},
		{"-o", filepath.Join(dir, "a.tar"), "-t", "registry.k8s.io/pause:3.10.2"},
		{"-o", filepath.Join(dir, "a.tar"), "-t", "registry.k8s.io/pause:3.10.2", "-add", "x:relative"},
		{"-o", filepath.Join(dir, "a.tar"), "-t", "registry.k8s.io/pause:3.10.2", "-root", dir, "-entrypoint", "/pause"},
	} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
