package csiceph

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/csi-gorbd/csi-gorbd/rbd"
)

func TestParseVolumeParams(t *testing.T) {
	p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "csi.storage.k8s.io/fstype": "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Features != 0 || p.NamePrefix != "csi-vol-" || p.SnapPrefix != "csi-snap-" || p.Order != 0 || p.StripeUnit != 0 {
		t.Errorf("defaults: %+v", p)
	}
	if _, ok := p.Context["csi.storage.k8s.io/fstype"]; ok || p.Context["pool"] != "rbd" {
		t.Errorf("volume context %v: want the parameters without csi.storage.k8s.io/*", p.Context)
	}
	p, err = ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering, exclusive-lock,object-map"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := rbd.ParseFeatures("layering", "exclusive-lock", "object-map")
	if p.Features != want || p.MaxCloneDepth != 0 {
		t.Errorf("features %#x, want %#x; maxCloneDepth %d", p.Features, want, p.MaxCloneDepth)
	}
	if p, err := ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "3"}); err != nil || p.MaxCloneDepth != 3 {
		t.Errorf("maxCloneDepth 3: %+v %v", p, err)
	}
	p, err = ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "stripeUnit": "65536", "stripeCount": "8", "objectSize": "8388608"})
	if err != nil || p.StripeUnit != 65536 || p.StripeCount != 8 || p.Order != 23 {
		t.Errorf("layout: %+v %v", p, err)
	}
	p, err = ParseVolumeParams(map[string]string{"clusterID": "c", "topologyConstrainedPools": `[{"poolName":"p1","dataPool":"d1",
		"domainSegments":[{"domainLabel":"zone","value":"z1"}]}]`})
	if err != nil || len(p.Topology) != 1 || p.Topology[0].DataPool != "d1" || p.Topology[0].DomainSegments[0].Value != "z1" {
		t.Errorf("topology: %+v %v", p, err)
	}
	for _, tc := range []struct {
		p    map[string]string
		name string // what the error must name
	}{
		{map[string]string{"pool": "rbd"}, "clusterID"},
		{map[string]string{"clusterID": "c"}, "pool"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "bogus"}, "imageFeatures"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": ""}, "imageFeatures"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "exclusive-lock"}, "layering"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering,object-map"}, "exclusive-lock"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering,journaling,exclusive-lock"}, "journaling"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "imageFeatures": "layering,striping"}, "striping"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "volumeNamePrefix": "a/b"}, "a/b"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "0"}, "maxCloneDepth"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "x"}, "maxCloneDepth"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "maxCloneDepth": "1000"}, "maxCloneDepth"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "encrypted": "true", "encryptionType": "file"}, "encryptionType"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "encrypted": "true", "encryptionLayout": "x"}, "encryptionLayout"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "encrypted": "yes please"}, "encrypted"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "bogusKey": "1"}, `"bogusKey"`},
		{map[string]string{"clusterID": "c", "pool": "rbd", "thickProvision": "true"}, "thickProvision"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "stripeUnit": "65536"}, "stripeCount"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "stripeUnit": "x", "stripeCount": "2"}, "stripeUnit"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "stripeUnit": "3000", "stripeCount": "2"}, "stripeUnit"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "objectSize": "3000000"}, "objectSize"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "objectSize": "1073741824"}, "objectSize"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "radosNamespace": ""}, "radosNamespace"},
		{map[string]string{"clusterID": "c", "pool": "rbd", "mkfsOptions": "-d /etc"}, "mkfsOptions"},
		{map[string]string{"clusterID": "c", "topologyConstrainedPools": "[{"}, "topologyConstrainedPools"},
		{map[string]string{"clusterID": "c", "topologyConstrainedPools": `[{"dataPool":"x"}]`}, "poolName"},
	} {
		_, err := ParseVolumeParams(tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%v: %v, want an error naming %s", tc.p, err, tc.name)
		}
	}
	_, err = ParseVolumeParams(map[string]string{"clusterID": "c", "pool": "rbd", "bogusKey": "1"})
	for _, k := range []string{"stripeUnit", "mounter", "topologyConstrainedPools"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("the unknown-key error does not list %s: %v", k, err)
		}
	}
}

// paramOutcome is what a parameter of ceph-csi's examples must do.
type paramOutcome struct {
	value  string // used instead of a placeholder example value ("": the example's)
	refuse bool   // InvalidArgument naming the key
	check  func(VolumeParams) bool
}

func mechanism(k string) paramOutcome {
	return paramOutcome{check: func(p VolumeParams) bool { return slices.Contains(p.Mechanism, k) }}
}

// exampleOutcomes says, for every key of ceph-csi's examples/rbd classes
// (v3.12.2), what ParseVolumeParams does with each example value.
var exampleOutcomes = map[string]func(value string) paramOutcome{
	"clusterID": func(string) paramOutcome {
		return paramOutcome{value: "c1", check: func(p VolumeParams) bool { return p.ClusterID == "c1" }}
	},
	"pool": func(string) paramOutcome {
		return paramOutcome{value: "rbd", check: func(p VolumeParams) bool { return p.Pool == "rbd" }}
	},
	"dataPool": func(string) paramOutcome {
		return paramOutcome{value: "ec-data", check: func(p VolumeParams) bool { return p.DataPool == "ec-data" }}
	},
	"imageFeatures": func(v string) paramOutcome {
		if strings.Contains(v, "journaling") {
			return paramOutcome{refuse: true}
		}
		return paramOutcome{check: func(p VolumeParams) bool { return p.Features == rbd.FeatureLayering }}
	},
	"mkfsOptions": func(v string) paramOutcome {
		return paramOutcome{check: func(p VolumeParams) bool { return p.MkfsOptions == v }}
	},
	"tryOtherMounters": func(string) paramOutcome { return mechanism("tryOtherMounters") },
	"mapOptions":       func(string) paramOutcome { return mechanism("mapOptions") },
	"unmapOptions":     func(string) paramOutcome { return mechanism("unmapOptions") },
	"mounter":          func(string) paramOutcome { return mechanism("mounter") },
	"cephLogDir":       func(string) paramOutcome { return mechanism("cephLogDir") },
	"cephLogStrategy":  func(string) paramOutcome { return mechanism("cephLogStrategy") },
	"volumeNamePrefix": func(v string) paramOutcome {
		return paramOutcome{check: func(p VolumeParams) bool { return p.NamePrefix == v }}
	},
	"encrypted": func(v string) paramOutcome {
		return paramOutcome{check: func(p VolumeParams) bool { return (p.Encryption != nil) == (v == "true") }}
	},
	// Without encrypted they select nothing (as in ceph-csi).
	"encryptionType":  func(string) paramOutcome { return paramOutcome{check: func(VolumeParams) bool { return true }} },
	"encryptionKMSID": func(string) paramOutcome { return paramOutcome{check: func(VolumeParams) bool { return true }} },
	"topologyConstrainedPools": func(string) paramOutcome {
		return paramOutcome{value: `[{"poolName":"p-east","domainSegments":[{"domainLabel":"region","value":"east"}]}]`,
			check: func(p VolumeParams) bool { return len(p.Topology) == 1 && p.Topology[0].PoolName == "p-east" }}
	},
	"stripeUnit": func(string) paramOutcome {
		return paramOutcome{value: "1048576", check: func(p VolumeParams) bool { return p.StripeUnit == 1<<20 && p.StripeCount == 4 }}
	},
	"stripeCount": func(string) paramOutcome {
		return paramOutcome{value: "4", check: func(p VolumeParams) bool { return p.StripeUnit == 1<<20 && p.StripeCount == 4 }}
	},
	"objectSize": func(string) paramOutcome {
		return paramOutcome{value: "8388608", check: func(p VolumeParams) bool { return p.Order == 23 }}
	},
}

// TestExampleParameters runs every key of ceph-csi's example
// StorageClass and VolumeSnapshotClass (test/cephcsi's generated list of
// examples/rbd at v3.12.2) through the parameter parser, with each value
// the example shows.
func TestExampleParameters(t *testing.T) {
	b, err := os.ReadFile("../../test/cephcsi/testdata/v3.12.2/examples-rbd-parameters.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Classes []struct {
			File, Kind string
			Parameters []struct {
				Key    string
				Values []string
			}
		}
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range ex.Classes {
		for _, ep := range c.Parameters {
			for _, val := range ep.Values {
				seen++
				switch c.Kind {
				case "VolumeSnapshotClass":
					p := map[string]string{"clusterID": "c1", ep.Key: val}
					s, err := ParseSnapshotParams(p)
					if err != nil {
						t.Errorf("%s %s=%q: %v", c.File, ep.Key, val, err)
					} else if ep.Key == "snapshotNamePrefix" && s.Prefix != val {
						t.Errorf("%s: snapshotNamePrefix %q not honoured: %+v", c.File, val, s)
					}
					continue
				case "StorageClass":
				default:
					t.Fatalf("%s: kind %s", c.File, c.Kind)
				}
				p := map[string]string{"clusterID": "c1", "pool": "rbd", "csi.storage.k8s.io/fstype": "ext4"}
				if strings.HasPrefix(ep.Key, "csi.storage.k8s.io/") {
					p[ep.Key] = val
					if v, err := ParseVolumeParams(p); err != nil || v.Context[ep.Key] != "" {
						t.Errorf("%s %s: sidecar key: %v, context %v", c.File, ep.Key, err, v.Context)
					}
					continue
				}
				outcome, ok := exampleOutcomes[ep.Key]
				if !ok {
					t.Errorf("%s: parameter %s has no stated outcome (add it to exampleOutcomes and the docs)", c.File, ep.Key)
					continue
				}
				o := outcome(val)
				if o.value != "" {
					val = o.value
				}
				p[ep.Key] = val
				if ep.Key == "stripeUnit" || ep.Key == "stripeCount" {
					p["stripeUnit"], p["stripeCount"] = "1048576", "4"
				}
				v, err := ParseVolumeParams(p)
				switch {
				case o.refuse && (err == nil || !strings.Contains(err.Error(), ep.Key)):
					t.Errorf("%s %s=%q: %v, want a refusal naming it", c.File, ep.Key, val, err)
				case !o.refuse && err != nil:
					t.Errorf("%s %s=%q: %v", c.File, ep.Key, val, err)
				case !o.refuse && !o.check(v):
					t.Errorf("%s %s=%q not honoured: %+v", c.File, ep.Key, val, v)
				case !o.refuse && v.Context[ep.Key] != val:
					t.Errorf("%s %s=%q: volume context %v lacks it", c.File, ep.Key, val, v.Context)
				}
			}
		}
	}
	if seen < 30 {
		t.Errorf("only %d example values: the list is not ceph-csi's", seen)
	}
}

func TestParseSnapshotParams(t *testing.T) {
	s, err := ParseSnapshotParams(map[string]string{"clusterID": "c", "pool": "rbd", "csi.storage.k8s.io/volumesnapshot/name": "vs"})
	if err != nil || s.Prefix != DefaultSnapPrefix || s.VSName != "vs" {
		t.Errorf("%+v %v", s, err)
	}
	for _, bad := range []map[string]string{{"bogus": "1"}, {"snapshotNamePrefix": "a@b"}} {
		if _, err := ParseSnapshotParams(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestCheckMkfsOptions(t *testing.T) {
	for _, ok := range []struct{ fs, opts string }{
		{"ext4", "-m0 -Enodiscard,lazy_itable_init=1,lazy_journal_init=1"},
		{"ext4", "-m0 -Ediscard -i1024"},
		{"ext4", "-b 4096 -O ^has_journal,metadata_csum -L data -T news -N 100000"},
		{"xfs", "-K"},
		{"xfs", "-m reflink=1,crc=1 -i size=512 -d agcount=4 -L vol"},
	} {
		if _, err := CheckMkfsOptions(ok.fs, ok.opts); err != nil {
			t.Errorf("%s %q: %v", ok.fs, ok.opts, err)
		}
	}
	for _, bad := range []struct{ fs, opts string }{
		{"ext4", ""}, {"ext4", "-d /etc"}, {"ext4", "-d/etc"}, {"ext4", "-z undo"}, {"ext4", "-E root_owner=0:0,offset=/x"},
		{"ext4", "-n"}, {"ext4", "-S"}, {"ext4", "-e panic"}, {"ext4", "-c"}, {"ext4", "/dev/sda"}, {"ext4", "-m"},
		{"ext4", "-j1"}, {"ext4", "-L a;b"}, {"ext4", "-m 2"}, {"ext4", "-m5"}, {"xfs", "-p proto"}, {"xfs", "-N"}, {"xfs", "-l logdev=/dev/sdb"},
		{"xfs", "-Ediscard"}, {"btrfs", "-K"},
	} {
		if _, err := CheckMkfsOptions(bad.fs, bad.opts); err == nil || !strings.Contains(err.Error(), "mkfsOptions") {
			t.Errorf("%s %q: %v, want a refusal naming mkfsOptions", bad.fs, bad.opts, err)
		}
	}
}

func TestParseClusters(t *testing.T) {
	m, err := ParseClusters([]byte(`[{"clusterID":"a","monitors":["10.0.0.1:6789","10.0.0.2"]},{"clusterID":"b","monitors":["h:3300"],"cephFS":{}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || len(m["a"].Monitors) != 2 || len(m.Notes()) != 0 {
		t.Errorf("got %+v, notes %v", m, m.Notes())
	}
	for _, bad := range []string{`{}`, `[{"clusterID":"a"}]`, `[{"monitors":["x"]}]`,
		`[{"clusterID":"a","monitors":["x"]},{"clusterID":"a","monitors":["y"]}]`,
		`[{"clusterID":"a","monitors":["x"],"rbd":{"radosNamespace":"a/b"}}]`,
		`[{"clusterID":"a","monitors":["x"],"cephOptions":{"ms_mode":"fast"}}]`,
		`[{"clusterID":"a","monitors":["x"],"cephOptions":{"client_mount_timeout":"-1"}}]`,
		`[{"clusterID":"a","monitors":["x"],"cephOptions":{"rbd_default_features":"exclusive-lock"}}]`,
		`[{"clusterID":"a","monitors":["x"],"cephOptions":{"rbd_default_order":"40"}}]`,
		`[{"clusterID":"a","monitors":["x"],"rbd":"ns"}]`} {
		if _, err := ParseClusters([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestCephCSIConfigJSON reads the config.json ceph-csi ran with in the
// capture, and one with everything ceph-csi's config map documents.
func TestCephCSIConfigJSON(t *testing.T) {
	m, err := ParseClusters([]byte(`[{"clusterID":"cdc11dd3-f5c1-45ca-a5e8-df93f3290452","monitors":["127.0.0.1:7501"]},
		{"clusterID":"ccsi-ns-cluster","monitors":["127.0.0.1:7501"],"rbd":{"radosNamespace":"csi-ns"}}]`))
	if err != nil || m["ccsi-ns-cluster"].Namespace() != "csi-ns" || m["cdc11dd3-f5c1-45ca-a5e8-df93f3290452"].Namespace() != "" {
		t.Fatalf("%+v %v", m, err)
	}
	m, err = ParseClusters([]byte(`[{"clusterID":"c","monitors":["10.0.0.1:3300"],
		"rbd":{"radosNamespace":"ns","netNamespaceFilePath":"/var/run/netns/x","mirrorDaemonCount":2},
		"readAffinity":{"enabled":true,"crushLocationLabels":["topology.kubernetes.io/zone"]},
		"cephFS":{"subvolumeGroup":"g","kernelMountOptions":"ms_mode=secure"},"nfs":{"netNamespaceFilePath":"/x"},
		"cephOptions":{"ms mode":"secure","client-mount-timeout":"12.5","rbd_default_features":"61","rbd_default_order":"23",
			"osd_op_queue":"wpq"},
		"newField":1}]`))
	if err != nil {
		t.Fatal(err)
	}
	c := m["c"]
	if c.Options.MsMode != "secure" || c.Options.ConnectTimeout.Seconds() != 12.5 || c.Options.DefaultFeatures != rbd.FeaturesDefault ||
		c.Options.DefaultOrder != 23 || c.Namespace() != "ns" {
		t.Errorf("options %+v", c.Options)
	}
	notes := strings.Join(m.Notes(), "\n")
	for _, want := range []string{"readAffinity", "netNamespaceFilePath", `"osd_op_queue"`, `"newField"`} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes do not mention %s:\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "cephFS") {
		t.Errorf("the CephFS driver's fields are noted: %s", notes)
	}
	for in, want := range map[string]string{"crc": "crc", "secure crc": "prefer-secure", "crc,secure": "prefer-crc", "prefer-secure": "prefer-secure"} {
		o, _, err := ParseClientOptions(map[string]string{"ms_client_mode": in})
		if err != nil || o.MsMode != want {
			t.Errorf("ms_client_mode %q: %q %v", in, o.MsMode, err)
		}
	}
}

func TestClusterMapping(t *testing.T) {
	cm, err := ParseClusterMapping([]byte(`[{"clusterIDMapping":{"site1":"site2"},"RBDPoolIDMapping":[{"1":"2"},{"11":"12"}]},
		{"clusterIDMapping":{"other":"x"},"RBDPoolIDMapping":[{"1":"9"}]}]`))
	if err != nil {
		t.Fatal(err)
	}
	got := cm.Alternatives(Location{ClusterID: "site1", PoolID: 1})
	if len(got) != 1 || got[0] != (Location{ClusterID: "site2", PoolID: 2}) {
		t.Errorf("site1/1: %v", got)
	}
	got = cm.Alternatives(Location{ClusterID: "site2", PoolID: 12})
	if len(got) != 1 || got[0] != (Location{ClusterID: "site1", PoolID: 11}) {
		t.Errorf("site2/12 (reverse): %v", got)
	}
	if got := cm.Alternatives(Location{ClusterID: "nope", PoolID: 1}); len(got) != 0 {
		t.Errorf("unmapped cluster: %v", got)
	}
	if _, err := ParseClusterMapping([]byte(`[{"clusterIDMapping":{"a":"b"},"RBDPoolIDMapping":[{"x":"2"}]}]`)); err == nil {
		t.Error("non-numeric pool id accepted")
	}
	if m, err := LoadClusterMapping(t.TempDir() + "/none.json"); err != nil || m != nil {
		t.Errorf("missing file: %v %v", m, err)
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
	f.Add([]byte(`[{"clusterID":"c","monitors":["h"],"rbd":{"radosNamespace":"n"},"cephOptions":{"ms_mode":"secure"}}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClusters(b)
		if err != nil {
			return
		}
		for id, c := range m {
			if id == "" || id != c.ClusterID || len(c.Monitors) == 0 || strings.ContainsAny(c.Namespace(), "/@") {
				t.Fatalf("accepted a bad entry %q: %+v", id, c)
			}
		}
	})
}

func FuzzParseVolumeParams(f *testing.F) {
	f.Add("c", "rbd", "layering,exclusive-lock", "csi-vol-", "3", "-m0", "65536")
	f.Add("c", "rbd", "", "", "", "", "")
	f.Add("", "rbd", "bogus", "a/b", "-1", "-d /", "x")
	f.Fuzz(func(t *testing.T, cluster, pool, features, prefix, depth, mkfs, stripe string) {
		p, err := ParseVolumeParams(map[string]string{"clusterID": cluster, "pool": pool, "imageFeatures": features,
			"volumeNamePrefix": prefix, "maxCloneDepth": depth, "mkfsOptions": mkfs, "stripeUnit": stripe, "stripeCount": "2"})
		if err != nil {
			return
		}
		if p.ClusterID == "" || p.Pool == "" || p.Features&rbd.FeatureLayering == 0 || strings.ContainsAny(p.NamePrefix, "/@") ||
			p.MaxCloneDepth < 0 || p.MaxCloneDepth > MaxCloneDepthLimit || strings.Contains(p.MkfsOptions, "/") ||
			p.StripeUnit == 0 || (1<<22)%p.StripeUnit != 0 {
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
