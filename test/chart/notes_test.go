package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// renderNotes renders templates/NOTES.txt, which helm template never prints:
// a copy of the chart gets an extra template that runs NOTES.txt through tpl
// (with the chart's named templates in scope) into a ConfigMap.
func renderNotes(t *testing.T, c renderCase, set ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "csi-gorbd")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chartDir, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes-under-test.txt"), notes, 0o644); err != nil {
		t.Fatal(err)
	}
	probe := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes-under-test\ndata:\n" +
		"  notes: {{ tpl (.Files.Get \"notes-under-test.txt\") . | quote }}\n"
	if err := os.WriteFile(filepath.Join(dir, "templates", "notes-under-test.yaml"), []byte(probe), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string // the chart moved, so values paths become absolute
	for _, v := range c.values {
		abs, err := filepath.Abs(v)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, abs)
	}
	args := append([]string{"template", "t", dir, "--namespace", c.namespace, "--kube-version", kubeVersion,
		"--show-only", "templates/notes-under-test.yaml"}, valuesArgs(files, set)...)
	out, errOut, err := runHelm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut)
	}
	objs := parseManifest(t, out)
	if len(objs) != 1 {
		t.Fatalf("want the notes ConfigMap, got %d objects", len(objs))
	}
	notesText := str(dig(objs[0], "data", "notes"))
	if testing.Verbose() {
		t.Logf("NOTES (%s):\n%s", c.name, notesText)
	}
	return notesText
}

func TestNotes(t *testing.T) {
	def := renderNotes(t, renderCase{name: "default", namespace: "kube-system"})
	for _, want := range []string{
		`CSI driver "rbd.csi-gorbd.io"`,
		"kubectl -n kube-system get deploy/t-csi-gorbd-controller ds/t-csi-gorbd-node",
		"WARNING: clusters.list is empty",
		"create secret generic t-csi-gorbd-secret",
		"--from-literal=userID=",
		"No StorageClass was created",
		"updateStrategy OnDelete",
	} {
		if !strings.Contains(def, want) {
			t.Errorf("default NOTES lack %q:\n%s", want, def)
		}
	}
	full := renderNotes(t, renderCase{name: "full", namespace: "csi", values: []string{"testdata/full-values.yaml"}})
	for _, want := range []string{`StorageClass "fast" provisions RBD images in pool "kube" of cluster "prod"`, "storageClassName: fast"} {
		if !strings.Contains(full, want) {
			t.Errorf("full NOTES lack %q:\n%s", want, full)
		}
	}
	for _, unwanted := range []string{"WARNING", "create secret generic", "OnDelete"} {
		if strings.Contains(full, unwanted) {
			t.Errorf("full NOTES should not say %q:\n%s", unwanted, full)
		}
	}
}
