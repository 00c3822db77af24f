package chart_test

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// There is no container engine on the build machines, so the image itself
// is not built here. These tests pin what the Dockerfile promises and build
// the binary exactly the way its builder stage does, for each target arch.

const repoRoot = "../.."

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dockerInstructions returns the Dockerfile's instructions with line
// continuations joined and comments dropped.
func dockerInstructions(t *testing.T) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readFile(t, filepath.Join(repoRoot, "Dockerfile"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	ins := dockerInstructions(t)
	var froms []string
	var runs []string
	var entry string
	for _, i := range ins {
		switch {
		case strings.HasPrefix(i, "FROM "):
			froms = append(froms, i)
		case strings.HasPrefix(i, "RUN "):
			runs = append(runs, i)
		case strings.HasPrefix(i, "ENTRYPOINT "):
			entry = i
		}
	}
	if len(froms) != 2 {
		t.Fatalf("want a two-stage build, FROM lines: %q", froms)
	}
	if !strings.Contains(froms[0], "--platform=$BUILDPLATFORM") {
		t.Errorf("builder must run on the build platform and cross-compile: %s", froms[0])
	}
	if !strings.Contains(froms[1], "debian:") || !strings.Contains(froms[1], "-slim") {
		t.Errorf("runtime stage should be a slim Debian: %s", froms[1])
	}
	goBuild := regexp.MustCompile(`CGO_ENABLED=0 GOOS=linux GOARCH=\$TARGETARCH go build .*\./cmd/csi-gorbd`)
	var built bool
	var pkgs []string
	for _, r := range runs {
		if goBuild.MatchString(r) {
			built = true
		}
		if _, after, ok := strings.Cut(r, "apt-get install"); ok {
			fields := strings.Fields(strings.Split(after, "&&")[0])
			for _, f := range fields {
				if !strings.HasPrefix(f, "-") {
					pkgs = append(pkgs, f)
				}
			}
		}
	}
	if !built {
		t.Errorf("no RUN cross-compiles with CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH: %q", runs)
	}
	want := []string{"e2fsprogs", "xfsprogs", "util-linux", "mount", "kmod"}
	if !equalStrings(pkgs, want) {
		t.Errorf("runtime packages %q, want exactly %q", pkgs, want)
	}
	for _, p := range pkgs {
		if strings.Contains(p, "ceph") || strings.Contains(p, "rbd") || strings.Contains(p, "rados") {
			t.Errorf("runtime installs a Ceph package: %s", p)
		}
	}
	if entry != `ENTRYPOINT ["/usr/local/bin/csi-gorbd"]` {
		t.Errorf("entrypoint %q: the chart passes only arguments", entry)
	}
}

// TestDockerignoreKeepsBuildInputs: every package the binary is built from
// (and go.mod/go.sum) must survive .dockerignore.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	var excluded []string
	for _, l := range strings.Split(readFile(t, filepath.Join(repoRoot, ".dockerignore")), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
			continue
		}
		excluded = append(excluded, l)
	}
	for _, must := range []string{".git", "test/", "charts/", "**/testdata/"} {
		if !contains(excluded, must) {
			t.Errorf(".dockerignore should exclude %s", must)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "./cmd/csi-gorbd")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, _ := filepath.Abs(repoRoot)
	n := 0
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		n++
		parts := strings.Split(filepath.ToSlash(rel), "/")
		for _, e := range excluded {
			e = strings.TrimSuffix(e, "/")
			if strings.HasPrefix(e, "**/") {
				if contains(parts, strings.TrimPrefix(e, "**/")) {
					t.Errorf("package %s is under an ignored %s", rel, e)
				}
			} else if m, _ := filepath.Match(e, parts[0]); m {
				t.Errorf("package %s is excluded from the build context by %q", rel, e)
			}
		}
	}
	if n == 0 {
		t.Fatal("go list found no packages of this module")
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		for _, e := range excluded {
			if m, _ := filepath.Match(e, f); m && !strings.Contains(readFile(t, filepath.Join(repoRoot, ".dockerignore")), "!"+f) {
				t.Errorf("%s is excluded by %q", f, e)
			}
		}
	}
}

// TestCrossCompile builds the binary as the Dockerfile's builder does, for
// each architecture the image is published for, and checks the result is a
// static ELF for that machine.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the whole binary twice; skipped with -short")
	}
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "csi-gorbd")
			cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", out, "./cmd/csi-gorbd")
			cmd.Dir = repoRoot
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build for linux/%s: %v\n%s", arch, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machine {
				t.Errorf("ELF machine %v, want %v", f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("binary for %s has a dynamic loader: not static", arch)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("binary for %s links %v", arch, libs)
			}
		})
	}
}
