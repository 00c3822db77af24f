package csiceph

import (
	"fmt"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

func TestParseVolumeParams(t *testing.T) {
	p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "csi.storage.k8s.io/fstype": "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Features != rbd.FeatureLayering || p.NamePrefix != "csi-vol-" || p.SnapPrefix != "csi-snap-" {
		t.Errorf("defaults: %+v", p)
	}
	p, err = ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering, exclusive-lock,object-map"})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxCloneDepth != 0 {
		t.Errorf("maxCloneDepth without the parameter: %d", p.MaxCloneDepth)
	}
	if p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "3"}); err != nil || p.MaxCloneDepth != 3 {
		t.Errorf("maxCloneDepth 3: %+v %v", p, err)
	}
	want, _ := rbd.ParseFeatures("layering", "exclusive-lock", "object-map")
	if p.Features != want {
		t.Errorf("features %#x, want %#x", p.Features, want)
	}
	for _, bad := range []map[string]string{
		{"pool": "rbd"},
		{"clusterID": "c"},
		{"clusterID": "c", "pool": "rbd", "imageFeatures": "bogus"},
		{"clusterID": "c", "pool": "rbd", "imageFeatures": "exclusive-lock"},
		{"clusterID": "c", "pool": "rbd", "volumeNamePrefix": "a/b"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "0"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "x"},
		{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "1000"},
	} {
		if _, err := ParseVolumeParams(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestParseClusters(t *testing.T) {
	m, err := ParseClusters([]byte(`[{"clusterID":"a","monitors":["10.0.0.1:6789","10.0.0.2"]},{"clusterID":"b","monitors":["h:3300"],"cephFS":{}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || len(m["a"].Monitors) != 2 {
		t.Errorf("got %+v", m)
	}
	for _, bad := range []string{`{}`, `[{"clusterID":"a"}]`, `[{"monitors":["x"]}]`,
		`[{"clusterID":"a","monitors":["x"]},{"clusterID":"a","monitors":["y"]}]`} {
		if _, err := ParseClusters([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	if _, err := CredentialsFrom(map[string]string{"userID": "admin"}); err == nil {
		t.Error("missing key accepted")
	}
	c, err := CredentialsFrom(map[string]string{"userID": "admin", "userKey": "AQ=="})
	if err != nil || c.User != "admin" || c.Key != "AQ==" {
		t.Errorf("%+v %v", c, err)
	}
}

func FuzzParseClusters(f *testing.F) {
	f.Add([]byte(`[{"clusterID":"a","monitors":["10.0.0.1:6789","v2:10.0.0.2:3300/0"]}]`))
	f.Add([]byte(`[{"clusterID":"b","monitors":["h:3300"],"cephFS":{}},{"clusterID":"c","monitors":["[::1]:6789"]}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClusters(b)
		if err != nil {
			return
		}
		for id, c := range m {
			if id == "" || id != c.ClusterID || len(c.Monitors) == 0 {
				t.Fatalf("accepted a bad entry %q: %+v", id, c)
			}
		}
	})
}

func FuzzParseVolumeParams(f *testing.F) {
	f.Add("c", "rbd", "layering,exclusive-lock", "csi-vol-", "3")
	f.Add("c", "rbd", "", "", "")
	f.Add("", "rbd", "bogus", "a/b", "-1")
	f.Fuzz(func(t *testing.T, cluster, pool, features, prefix, depth string) {
		p, err := ParseVolumeParams(map[string]string{"clusterID": cluster, "pool": pool, "imageFeatures": features,
			"volumeNamePrefix": prefix, "maxCloneDepth": depth})
		if err != nil {
			return
		}
		if p.ClusterID == "" || p.Pool == "" || p.Features&rbd.FeatureLayering == 0 || strings.ContainsAny(p.NamePrefix, "/@") ||
			p.MaxCloneDepth < 0 || p.MaxCloneDepth > 2*MaxCloneDepthLimit {
			t.Fatalf("accepted %+v", p)
		}
	})
}

func TestCredentialsRedacted(t *testing.T) {
	const key = "AQBcJ2NmAAAAABAAc0ZtV1f1hQ0Xb2Zk0pM2nA=="
	c := Credentials{User: "csi-node", Key: key}
	type nested struct {
		C  Credentials
		P  *Credentials
		Cs []Credentials
	}
	for _, v := range []any{c, &c, nested{C: c, P: &c, Cs: []Credentials{c}}, map[string]Credentials{"a": c}} {
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%T %v", "%10v", "%-v"} {
			out := fmt.Sprintf(f, v)
			if strings.Contains(out, key) || strings.Contains(out, fmt.Sprintf("%x", key)) || strings.Contains(out, fmt.Sprintf("%X", key)) {
				t.Errorf("%s of %T prints the key: %s", f, v, out)
			}
		}
	}
	if out := fmt.Sprintf("%+v", c); !strings.Contains(out, "csi-node") || !strings.Contains(out, Redacted) {
		t.Errorf("%%+v = %s: want the user and %s", out, Redacted)
	}
	if out := fmt.Sprintf("%+v", Credentials{User: "u"}); strings.Contains(out, Redacted) {
		t.Errorf("an empty key prints as %s: %s", Redacted, out)
	}
}
