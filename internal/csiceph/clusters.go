package csiceph

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ClusterInfo is one entry of the clusters file (ceph-csi's config.json
// subset).
type ClusterInfo struct {
	ClusterID string   `json:"clusterID"`
	Monitors  []string `json:"monitors"`
}

// Clusters are the entries of the clusters file by cluster id.
type Clusters map[string]ClusterInfo

// LoadClusters reads a clusters file: a JSON list of ClusterInfo.
func LoadClusters(path string) (Clusters, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseClusters(b)
}

// ParseClusters decodes the clusters file contents.
func ParseClusters(b []byte) (Clusters, error) {
	var list []ClusterInfo
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("clusters file: %w", err)
	}
	m := make(Clusters, len(list))
	for i, c := range list {
		if c.ClusterID == "" || len(c.Monitors) == 0 {
			return nil, fmt.Errorf("clusters file: entry %d needs clusterID and monitors", i)
		}
		if _, dup := m[c.ClusterID]; dup {
			return nil, fmt.Errorf("clusters file: duplicate clusterID %q", c.ClusterID)
		}
		m[c.ClusterID] = c
	}
	return m, nil
}

// IDs returns the cluster ids, sorted.
func (cs Clusters) IDs() []string {
	ids := make([]string, 0, len(cs))
	for id := range cs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

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
