package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "../../charts/csi-gorbd"

// object is one rendered manifest, kept as JSON.
type object struct {
	Kind     string
	Name     string
	Document []byte // the YAML as rendered
	JSON     []byte
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// render runs `helm template` and splits the output into objects.
func render(ctx context.Context, t *testing.T, helm, release, ns string, valuesFiles ...string) []object {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", ns, "--kube-version", "1.37.1"}
	for _, v := range valuesFiles {
		args = append(args, "-f", v)
	}
	out, err := run(ctx, nil, nil, helm, args...)
	if err != nil {
		t.Fatal(err)
	}
	objs := splitManifest(t, out)
	if len(objs) == 0 {
		t.Fatalf("helm template %v rendered nothing", args)
	}
	return objs
}

// splitManifest splits a multi-document YAML stream into objects.
func splitManifest(t *testing.T, out []byte) []object {
	t.Helper()
	var objs []object
	for _, doc := range docSep.Split(string(out), -1) {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, doc)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if string(j) == "null" {
			continue
		}
		if err := json.Unmarshal(j, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Kind == "" {
			continue
		}
		objs = append(objs, object{Kind: meta.Kind, Name: meta.Metadata.Name, Document: []byte(doc), JSON: j})
	}
	return objs
}

// manifest joins objects into one multi-document YAML stream.
func manifest(objs []object) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString("---\n")
		b.Write(bytes.TrimSpace(o.Document))
		b.WriteString("\n")
	}
	return b.Bytes()
}

// find returns the rendered object of kind and name, failing the test if absent.
func find(t *testing.T, objs []object, kind, name string, v any) {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && (name == "" || o.Name == name) {
			if err := json.Unmarshal(o.JSON, v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("chart rendered no %s %q", kind, name)
}

// optionalKinds may be absent from the apiserver (their CRDs belong to other
// projects); the dry-run leaves them out and says so.
var optionalKinds = map[string]string{"ServiceMonitor": "monitoring.coreos.com"}

// dryRun sends the whole rendered chart to the apiserver with a server-side,
// strictly validated dry-run: defaulting, admission and CRD schemas apply.
func (k *kube) dryRun(ctx context.Context, t *testing.T, ns string, objs []object) {
	t.Helper()
	if _, err := k.kubectl(ctx, nil, "create", "namespace", ns); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	res, err := k.kubectl(ctx, nil, "api-resources", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	var send []object
	for _, o := range objs {
		if g, ok := optionalKinds[o.Kind]; ok && !strings.Contains(string(res), "."+g) {
			t.Logf("dry-run: %s %s left out (no %s API on this apiserver)", o.Kind, o.Name, g)
			continue
		}
		send = append(send, o)
	}
	out, err := k.kubectl(ctx, manifest(send), "apply", "--dry-run=server", "--validate=strict", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("server-side dry-run of %d objects rejected: %v", len(send), err)
	}
	if n := strings.Count(string(out), "(server dry run)"); n != len(send) {
		t.Fatalf("dry-run accepted %d of %d objects:\n%s", n, len(send), out)
	}
}

// writeValues writes a values file for helm.
func writeValues(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func kindsOf(objs []object) string {
	var s []string
	for _, o := range objs {
		s = append(s, fmt.Sprintf("%s/%s", o.Kind, o.Name))
	}
	return strings.Join(s, " ")
}
