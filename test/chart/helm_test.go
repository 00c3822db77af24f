package chart_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/csi-gorbd/csi-gorbd/internal/cephtest"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../../charts/csi-gorbd"

// kubeVersion is passed to helm template: a helm built by `go install` has no
// version ldflags and would otherwise pretend the cluster is v1.20.
const kubeVersion = "1.37.1"

// renderCase is one set of values the chart is rendered with. A server-side
// check can range over renderCases too.
type renderCase struct {
	name      string
	namespace string
	values    []string // values files, relative to this package
}

var renderCases = []renderCase{
	{name: "default", namespace: "kube-system"},
	{name: "full", namespace: "csi", values: []string{"testdata/full-values.yaml"}},
}

// helmPath finds helm in PATH or in $(go env GOPATH)/bin, where test/tools.sh
// installs it. Missing helm skips locally and fails in CI.
func helmPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	var dirs []string
	if gb := os.Getenv("GOBIN"); gb != "" {
		dirs = append(dirs, gb)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, gp := range filepath.SplitList(strings.TrimSpace(string(out))) {
			dirs = append(dirs, filepath.Join(gp, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "helm")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := "helm not found in PATH or $(go env GOPATH)/bin: run test/tools.sh"
	if cephtest.Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runHelm runs helm with args and returns stdout, stderr and the exit error.
func runHelm(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	// Keep helm away from the user's repositories, plugins and caches.
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(tmp, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"HELM_DATA_HOME="+filepath.Join(tmp, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func valuesArgs(files []string, set []string) []string {
	var a []string
	for _, f := range files {
		a = append(a, "-f", f)
	}
	for _, s := range set {
		a = append(a, "--set", s)
	}
	return a
}

// renderRaw runs helm template and returns the manifest text.
func renderRaw(t *testing.T, c renderCase, set ...string) (string, error) {
	t.Helper()
	args := append([]string{"template", "t", chartDir, "--namespace", c.namespace,
		"--kube-version", kubeVersion}, valuesArgs(c.values, set)...)
	out, errOut, err := runHelm(t, args...)
	if err != nil {
		return "", fmt.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out, nil
}

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { s, _ := dig(o, "metadata", "name").(string); return s }

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// parseManifest splits a multi-document YAML stream into objects.
func parseManifest(t *testing.T, text string) []object {
	t.Helper()
	var objs []object
	for i, doc := range docSep.Split(text, -1) {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("document %d is not valid YAML: %v\n%s", i, err, doc)
		}
		if len(o) == 0 {
			continue
		}
		if o.kind() == "" || o.name() == "" {
			t.Fatalf("document %d has no kind or metadata.name:\n%s", i, doc)
		}
		objs = append(objs, o)
	}
	return objs
}

// render renders case c (plus --set overrides) and parses it.
func render(t *testing.T, c renderCase, set ...string) []object {
	t.Helper()
	text, err := renderRaw(t, c, set...)
	if err != nil {
		t.Fatal(err)
	}
	return parseManifest(t, text)
}

// dig walks maps (string keys) and slices (int keys); nil when absent.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, ok2 := v.(object); ok2 {
					m = o
				} else {
					return nil
				}
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k < 0 || k >= len(s) {
				return nil
			}
			v = s[k]
		default:
			return nil
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func strs(v any) []string {
	s, _ := v.([]any)
	out := make([]string, 0, len(s))
	for _, e := range s {
		out = append(out, str(e))
	}
	return out
}

func maps(v any) []map[string]any {
	s, _ := v.([]any)
	var out []map[string]any
	for _, e := range s {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// find returns the only object of kind whose name ends with suffix.
func find(t *testing.T, objs []object, kind, suffix string) object {
	t.Helper()
	var hit []object
	for _, o := range objs {
		if o.kind() == kind && strings.HasSuffix(o.name(), suffix) {
			hit = append(hit, o)
		}
	}
	if len(hit) != 1 {
		t.Fatalf("want exactly one %s named *%s, found %d", kind, suffix, len(hit))
	}
	return hit[0]
}

func count(objs []object, kind string) int {
	n := 0
	for _, o := range objs {
		if o.kind() == kind {
			n++
		}
	}
	return n
}

// container returns the named container of a workload's pod template.
func container(t *testing.T, workload object, name string) map[string]any {
	t.Helper()
	for _, c := range maps(dig(workload, "spec", "template", "spec", "containers")) {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("%s %s has no container %q", workload.kind(), workload.name(), name)
	return nil
}

func containerNames(workload object) []string {
	var n []string
	for _, c := range maps(dig(workload, "spec", "template", "spec", "containers")) {
		n = append(n, str(c["name"]))
	}
	return n
}

// mount returns the volumeMount of container c at path.
func mount(t *testing.T, c map[string]any, path string) map[string]any {
	t.Helper()
	for _, m := range maps(c["volumeMounts"]) {
		if m["mountPath"] == path {
			return m
		}
	}
	t.Fatalf("container %v has no mount at %s", c["name"], path)
	return nil
}

// volume returns the pod volume called name.
func volume(t *testing.T, workload object, name string) map[string]any {
	t.Helper()
	for _, v := range maps(dig(workload, "spec", "template", "spec", "volumes")) {
		if v["name"] == name {
			return v
		}
	}
	t.Fatalf("%s has no volume %q", workload.name(), name)
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// pinnedTag matches an image reference ending in a vX.Y.Z tag.
var pinnedTag = regexp.MustCompile(`:v[0-9]+\.[0-9]+\.[0-9]+$`)
