package cephcsi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// StateFormat is the version of the State JSON layout.
const StateFormat = 1

// State is what one capture run recorded: the oracle that wrote it, the
// CSI conversation with it, and the cluster state it left behind.
type State struct {
	Format     int    `json:"format"`
	Oracle     Oracle `json:"oracle"`
	Ceph       Ceph   `json:"ceph"`
	CapturedAt string `json:"captured_at"`

	// Driver is how the oracle's controller was started.
	Driver Driver `json:"driver"`
	// ConfigJSON is the config.json given to ceph-csi, KMSConfigJSON its
	// /etc/ceph-csi-encryption-kms-config/config.json (both verbatim).
	ConfigJSON    json.RawMessage `json:"config_json"`
	KMSConfigJSON json.RawMessage `json:"kms_config_json,omitempty"`

	// Calls is the CSI conversation in order; Steps name its results.
	Calls []Call `json:"calls"`

	// Layout is what the run left in the pools.
	Layout Layout `json:"layout"`
}

// Oracle identifies the ceph-csi build (build.sh's cephcsi.version).
type Oracle struct {
	Version   string `json:"cephcsi_version"`
	Commit    string `json:"cephcsi_commit"`
	GoTags    string `json:"go_tags"`
	Go        string `json:"go"`
	LibrbdDev string `json:"librbd_dev"`
}

// Ceph is the cluster the oracle ran against.
type Ceph struct {
	Cluster string `json:"cluster"` // test/cluster name
	Version string `json:"version"` // `ceph version`
	FSID    string `json:"fsid"`
}

// Driver is the oracle controller's command line.
type Driver struct {
	Name       string   `json:"name"`
	InstanceID string   `json:"instance_id"`
	Args       []string `json:"args"`
}

// Call is one CSI RPC: the step it belongs to, the method, the request
// (protojson, secrets replaced by their key names) and the response or the
// gRPC error.
type Call struct {
	Step     string          `json:"step"`
	Method   string          `json:"method"`
	Request  json.RawMessage `json:"request"`
	Response json.RawMessage `json:"response,omitempty"`
	Code     string          `json:"code,omitempty"` // gRPC code name on failure
	Error    string          `json:"error,omitempty"`
}

// Layout is the RADOS and RBD state of a set of pools, as the `rados` and
// `rbd` CLIs report it (Dump).
type Layout struct {
	Pools   []Pool   `json:"pools"`
	Objects []Object `json:"objects"` // the csi.* journal objects
	Images  []Image  `json:"images"`  // live and trashed images
}

// Pool is one pool and the RBD namespaces in it that were dumped ("" is
// the default namespace).
type Pool struct {
	Name       string   `json:"name"`
	ID         int64    `json:"id"`
	Namespaces []string `json:"namespaces"`
}

// Object is one RADOS object with its omap, values byte-exact.
type Object struct {
	Pool      string      `json:"pool"`
	Namespace string      `json:"namespace"`
	Name      string      `json:"name"`
	Size      int64       `json:"size"`
	Omap      []OmapEntry `json:"omap"`
}

// OmapEntry is one omap key and its value: Value is the exact bytes
// (base64 in JSON); Text repeats them when they are printable, for readers.
type OmapEntry struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
	Text  string `json:"text,omitempty"`
}

// Image is one RBD image: `rbd info`, `rbd image-meta list` and
// `rbd snap ls --all` as JSON, plus the trash entry if it is in the trash.
type Image struct {
	Pool      string            `json:"pool"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	ID        string            `json:"id"`
	Info      ImageInfo         `json:"info"`
	Metadata  map[string]string `json:"metadata"`
	Snapshots []Snapshot        `json:"snapshots"`
	Trash     *TrashEntry       `json:"trash,omitempty"`
}

// ImageInfo is the part of `rbd info --format json` that describes the
// image's layout and lineage (timestamps are left out: they cannot be
// replayed).
type ImageInfo struct {
	Size            uint64   `json:"size"`
	ObjectSize      uint64   `json:"object_size"`
	Order           uint8    `json:"order"`
	BlockNamePrefix string   `json:"block_name_prefix"`
	Format          int      `json:"format"`
	Features        []string `json:"features"`
	OpFeatures      []string `json:"op_features"`
	Flags           []string `json:"flags"`
	StripeUnit      uint64   `json:"stripe_unit,omitempty"`
	StripeCount     uint64   `json:"stripe_count,omitempty"`
	DataPool        string   `json:"data_pool,omitempty"`
	Parent          *Parent  `json:"parent,omitempty"`
}

// Parent is a clone's parent as `rbd info` shows it.
type Parent struct {
	Pool          string `json:"pool"`
	PoolNamespace string `json:"pool_namespace"`
	Image         string `json:"image"`
	ID            string `json:"id"`
	Snapshot      string `json:"snapshot"`
	Trash         bool   `json:"trash"`
	Overlap       uint64 `json:"overlap"`
}

// Snapshot is one entry of `rbd snap ls --all --format json`.
type Snapshot struct {
	ID        uint64 `json:"id"`
	Name      string `json:"name"`
	Size      uint64 `json:"size"`
	Protected string `json:"protected"`
	// Namespace is "user", "trash" (with OriginalName) or "group".
	Namespace    string `json:"namespace"`
	OriginalName string `json:"original_name,omitempty"`
}

// TrashEntry is the image's line of `rbd trash ls --all --long`.
type TrashEntry struct {
	Source string `json:"source"` // USER, REMOVING, MIRRORING, ...
	// Deferred is whether the deferment end lies after the deletion time.
	Deferred bool `json:"deferred"`
}

// MarshalJSON keeps omap values exact and readable.
func (e OmapEntry) MarshalJSON() ([]byte, error) {
	type wire struct {
		Key   string `json:"key"`
		Value string `json:"value_base64"`
		Text  string `json:"text,omitempty"`
	}
	return json.Marshal(wire{Key: e.Key, Value: base64.StdEncoding.EncodeToString(e.Value), Text: e.Text})
}

// UnmarshalJSON is MarshalJSON's inverse.
func (e *OmapEntry) UnmarshalJSON(b []byte) error {
	var w struct {
		Key   string `json:"key"`
		Value string `json:"value_base64"`
		Text  string `json:"text"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v, err := base64.StdEncoding.DecodeString(w.Value)
	if err != nil {
		return fmt.Errorf("omap %q: %w", w.Key, err)
	}
	e.Key, e.Value, e.Text = w.Key, v, w.Text
	return nil
}

// Sort orders everything in the layout by pool, namespace and name, so
// two layouts compare and diff line by line.
func (l *Layout) Sort() {
	sort.Slice(l.Pools, func(i, j int) bool { return l.Pools[i].Name < l.Pools[j].Name })
	sort.Slice(l.Objects, func(i, j int) bool {
		a, b := l.Objects[i], l.Objects[j]
		return a.Pool+"\x00"+a.Namespace+"\x00"+a.Name < b.Pool+"\x00"+b.Namespace+"\x00"+b.Name
	})
	for _, o := range l.Objects {
		sort.Slice(o.Omap, func(i, j int) bool { return o.Omap[i].Key < o.Omap[j].Key })
	}
	sort.Slice(l.Images, func(i, j int) bool {
		a, b := l.Images[i], l.Images[j]
		return a.Pool+"\x00"+a.Namespace+"\x00"+a.Name+"\x00"+a.ID < b.Pool+"\x00"+b.Namespace+"\x00"+b.Name+"\x00"+b.ID
	})
	for _, im := range l.Images {
		sort.Slice(im.Snapshots, func(i, j int) bool { return im.Snapshots[i].ID < im.Snapshots[j].ID })
	}
}

// PoolID returns the id of the named pool in the layout.
func (l *Layout) PoolID(name string) (int64, bool) {
	for _, p := range l.Pools {
		if p.Name == name {
			return p.ID, true
		}
	}
	return 0, false
}

// PoolName returns the name of the pool with that id in the layout.
func (l *Layout) PoolName(id int64) (string, bool) {
	for _, p := range l.Pools {
		if p.ID == id {
			return p.Name, true
		}
	}
	return "", false
}

// Step returns the first call of the named step with the given method.
func (s *State) Step(step, method string) (*Call, bool) {
	for i := range s.Calls {
		if s.Calls[i].Step == step && s.Calls[i].Method == method {
			return &s.Calls[i], true
		}
	}
	return nil, false
}

// VolumeID is the volume_id ceph-csi answered for step's CreateVolume.
func (s *State) VolumeID(step string) (string, error) {
	c, ok := s.Step(step, "CreateVolume")
	if !ok || c.Response == nil {
		return "", fmt.Errorf("cephcsi: no successful CreateVolume in step %q", step)
	}
	var r struct {
		Volume struct {
			VolumeID string `json:"volumeId"`
		} `json:"volume"`
	}
	if err := json.Unmarshal(c.Response, &r); err != nil {
		return "", err
	}
	return r.Volume.VolumeID, nil
}

// SnapshotID is the snapshot_id ceph-csi answered for step's CreateSnapshot.
func (s *State) SnapshotID(step string) (string, error) {
	c, ok := s.Step(step, "CreateSnapshot")
	if !ok || c.Response == nil {
		return "", fmt.Errorf("cephcsi: no successful CreateSnapshot in step %q", step)
	}
	var r struct {
		Snapshot struct {
			SnapshotID string `json:"snapshotId"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(c.Response, &r); err != nil {
		return "", err
	}
	return r.Snapshot.SnapshotID, nil
}

// Deleted reports whether a successful DeleteVolume or DeleteSnapshot for
// the handle was recorded.
func (s *State) Deleted(handle string) bool {
	for _, c := range s.Calls {
		if (c.Method != "DeleteVolume" && c.Method != "DeleteSnapshot") || c.Code != "" {
			continue
		}
		var r struct {
			VolumeID   string `json:"volumeId"`
			SnapshotID string `json:"snapshotId"`
		}
		if json.Unmarshal(c.Request, &r) == nil && (r.VolumeID == handle || r.SnapshotID == handle) {
			return true
		}
	}
	return false
}

// LoadState reads a state.json.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Format != StateFormat {
		return nil, fmt.Errorf("%s: state format %d, want %d", path, s.Format, StateFormat)
	}
	return &s, nil
}

// Captured lists the captured versions under dir (testdata/<version>/state.json).
func Captured(dir string) ([]string, error) {
	m, err := filepath.Glob(filepath.Join(dir, "*", "state.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range m {
		out = append(out, filepath.Base(filepath.Dir(p)))
	}
	sort.Strings(out)
	return out, nil
}

// WriteJSON writes v indented, with a trailing newline.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ExampleParameters lists the parameter keys of ceph-csi's example
// StorageClass and VolumeSnapshotClass files (examples/rbd) at one commit,
// as test/cephcsi/examples extracted them.
type ExampleParameters struct {
	Version     string         `json:"cephcsi_version"`
	Commit      string         `json:"cephcsi_commit"`
	GeneratedBy string         `json:"generated_by"`
	Classes     []ExampleClass `json:"classes"`
}

// ExampleClass is one class document of an example file.
type ExampleClass struct {
	File       string             `json:"file"`
	Kind       string             `json:"kind"`
	Name       string             `json:"name"`
	Parameters []ExampleParameter `json:"parameters"`
}

// ExampleParameter is one key: its example values in file order, whether
// the example only shows it commented out (an option), and its first line.
type ExampleParameter struct {
	Key       string   `json:"key"`
	Values    []string `json:"values"`
	Commented bool     `json:"commented"`
	Line      int      `json:"line"`
}

// Add records key (again): a key set anywhere in the file is not commented.
func (c *ExampleClass) Add(key, value string, commented bool, line int) {
	for i := range c.Parameters {
		p := &c.Parameters[i]
		if p.Key == key {
			p.Values = append(p.Values, value)
			p.Commented = p.Commented && commented
			return
		}
	}
	c.Parameters = append(c.Parameters, ExampleParameter{Key: key, Values: []string{value}, Commented: commented, Line: line})
}

// LoadExampleParameters reads an examples-rbd-parameters.json.
func LoadExampleParameters(path string) (*ExampleParameters, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e ExampleParameters
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &e, nil
}
