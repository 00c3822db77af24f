package csiceph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ClusterInfo is one entry of the clusters file, ceph-csi's config.json:
// what ceph-csi's RBD driver reads from it, and cephOptions, csi-gorbd's
// per-cluster client options. The CephFS and NFS drivers' fields (cephFS,
// nfs) are accepted and ignored.
type ClusterInfo struct {
	ClusterID string   `json:"clusterID"`
	Monitors  []string `json:"monitors"`
	// RBD is ceph-csi's "rbd" object.
	RBD RBDConfig `json:"rbd,omitzero"`
	// ReadAffinity is ceph-csi's "readAffinity" object.
	ReadAffinity ReadAffinity `json:"readAffinity,omitzero"`
	// CephOptions are ceph.conf options ("ms_mode": "secure", ...) for
	// this cluster's client; ParseClusters checks them into Options.
	CephOptions map[string]string `json:"cephOptions,omitempty"`

	// Options are CephOptions, checked.
	Options ClientOptions `json:"-"`
	// Notes say what of this entry is accepted but not honoured.
	Notes []string `json:"-"`
}

// RBDConfig is the "rbd" object of a config.json entry.
type RBDConfig struct {
	// RadosNamespace holds the images and journals of this clusterID (it
	// must exist; neither driver creates it).
	RadosNamespace string `json:"radosNamespace,omitempty"`
	// NetNamespaceFilePath is where ceph-csi's node runs `rbd map` (not
	// honoured: the node plugin's own network namespace is used).
	NetNamespaceFilePath string `json:"netNamespaceFilePath,omitempty"`
	// MirrorDaemonCount is for csi-addons mirroring (not used).
	MirrorDaemonCount int `json:"mirrorDaemonCount,omitempty"`
}

// ReadAffinity is ceph-csi's localized-reads setting for krbd.
type ReadAffinity struct {
	Enabled             bool     `json:"enabled,omitempty"`
	CrushLocationLabels []string `json:"crushLocationLabels,omitempty"`
}

// Namespace is the RADOS namespace of the cluster's images and journals.
func (ci ClusterInfo) Namespace() string { return ci.RBD.RadosNamespace }

// Clusters are the entries of the clusters file by cluster id.
type Clusters map[string]ClusterInfo

// knownClusterKeys are the config.json fields an entry may have.
var knownClusterKeys = map[string]bool{
	"clusterID": true, "monitors": true, "rbd": true, "readAffinity": true, "cephOptions": true,
	"cephFS": true, "nfs": true,
}

// LoadClusters reads a clusters file: a JSON list of ClusterInfo.
func LoadClusters(path string) (Clusters, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseClusters(b)
}

// ParseClusters decodes the clusters file contents and checks every
// entry's cephOptions. What is accepted but not honoured (unknown fields
// and options, readAffinity, rbd.netNamespaceFilePath) is in each entry's
// Notes (see Clusters.Notes).
func ParseClusters(b []byte) (Clusters, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	m := make(Clusters, len(raw))
	for i, r := range raw {
		enc, _ := json.Marshal(r)
		var c ClusterInfo
		if err := json.Unmarshal(enc, &c); err != nil {
			return nil, fmt.Errorf("clusters file: entry %d: %w", i, err)
		}
		if c.ClusterID == "" || len(c.Monitors) == 0 {
			return nil, fmt.Errorf("clusters file: entry %d needs clusterID and monitors", i)
		}
		if _, dup := m[c.ClusterID]; dup {
			return nil, fmt.Errorf("clusters file: duplicate clusterID %q", c.ClusterID)
		}
		if strings.ContainsAny(c.RBD.RadosNamespace, "/@") {
			return nil, fmt.Errorf("clusters file: cluster %q: rbd.radosNamespace %q must not contain '/' or '@'", c.ClusterID, c.RBD.RadosNamespace)
		}
		opts, notes, err := ParseClientOptions(c.CephOptions)
		if err != nil {
			return nil, fmt.Errorf("clusters file: cluster %q: cephOptions: %w", c.ClusterID, err)
		}
		c.Options = opts
		for _, k := range sortedKeys(r) {
			if !knownClusterKeys[k] {
				notes = append(notes, fmt.Sprintf("field %q is not known and is ignored", k))
			}
		}
		if c.ReadAffinity.Enabled {
			notes = append(notes, "readAffinity is not honoured: the client sends every read to the primary OSD (it cannot pick the closest replica)")
		}
		if c.RBD.NetNamespaceFilePath != "" {
			notes = append(notes, "rbd.netNamespaceFilePath is not honoured: the node plugin reaches the cluster from its own network namespace")
		}
		for j := range notes {
			notes[j] = fmt.Sprintf("cluster %q: %s", c.ClusterID, notes[j])
		}
		c.Notes = notes
		m[c.ClusterID] = c
	}
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Notes gathers what every entry accepted without honouring it, sorted,
// for the plugin to log at start.
func (cs Clusters) Notes() []string {
	var out []string
	for _, id := range cs.IDs() {
		out = append(out, cs[id].Notes...)
	}
	return out
}

// IDs returns the cluster ids, sorted.
func (cs Clusters) IDs() []string { return sortedKeys(cs) }

// Lookup returns the entry of a cluster id; an unknown id is
// ErrUnknownCluster with the known ids named.
func (cs Clusters) Lookup(id string) (ClusterInfo, error) {
	ci, ok := cs[id]
	if !ok {
		return ci, fmt.Errorf("%w: clusterID %q is not in the clusters file (known: %s)",
			ErrUnknownCluster, id, strings.Join(cs.IDs(), ", "))
	}
	return ci, nil
}

// ClusterMapping is ceph-csi's cluster-mapping.json: pairs of clusterIDs
// and of pool ids that name the same volumes (after a failover to a
// mirror, or a replay into new pools). A handle whose cluster and pool do
// not lead to its volume is tried again with the mapped ones, either
// direction.
type ClusterMapping []MappingEntry

// MappingEntry is one element of cluster-mapping.json.
type MappingEntry struct {
	ClusterIDMapping map[string]string   `json:"clusterIDMapping"`
	RBDPoolIDMapping []map[string]string `json:"RBDPoolIDMapping"`
	// CephFSFscIDMapping is for the CephFS driver (ignored).
	CephFSFscIDMapping []map[string]string `json:"CephFSFscIDMapping,omitempty"`
}

// Location is a clusterID and a pool id.
type Location struct {
	ClusterID string
	PoolID    int64
}

// LoadClusterMapping reads cluster-mapping.json; a missing file is no
// mapping.
func LoadClusterMapping(path string) (ClusterMapping, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseClusterMapping(b)
}

// ParseClusterMapping decodes cluster-mapping.json; pool ids must be
// decimal numbers.
func ParseClusterMapping(b []byte) (ClusterMapping, error) {
	var m ClusterMapping
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("cluster mapping: %w", err)
	}
	for i, e := range m {
		for _, pools := range e.RBDPoolIDMapping {
			for k, v := range pools {
				for _, s := range []string{k, v} {
					if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < 0 {
						return nil, fmt.Errorf("cluster mapping: entry %d: pool id %q is not a number", i, s)
					}
				}
			}
		}
	}
	return m, nil
}

// Alternatives lists where else a handle's volume may be, in the order
// ceph-csi tries them: for each mapping entry naming the cluster (as key
// or value), the other cluster with each mapped pool id.
func (cm ClusterMapping) Alternatives(l Location) []Location {
	var out []Location
	pool := strconv.FormatInt(l.PoolID, 10)
	for _, e := range cm {
		for _, k := range sortedKeys(e.ClusterIDMapping) {
			cluster := mapped(k, e.ClusterIDMapping[k], l.ClusterID)
			if cluster == "" {
				continue
			}
			for _, pools := range e.RBDPoolIDMapping {
				for _, pk := range sortedKeys(pools) {
					if p := mapped(pk, pools[pk], pool); p != "" {
						n, _ := strconv.ParseInt(p, 10, 64)
						out = append(out, Location{ClusterID: cluster, PoolID: n})
					}
				}
			}
		}
	}
	return out
}

// mapped returns the other side of the pair (k, v) when id is one side.
func mapped(k, v, id string) string {
	switch id {
	case k:
		return v
	case v:
		return k
	}
	return ""
}
