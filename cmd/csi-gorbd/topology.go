package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/csi-gorbd/csi-gorbd/controllerserver"
	"github.com/csi-gorbd/csi-gorbd/internal/kubenodes"
)

// Node topology from domain labels, as ceph-csi's --domainlabels: the
// node plugin reads the labels of its Kubernetes node and reports each
// listed one as topology.<driver name>/<label name after its first '/'>,
// which StorageClasses' topologyConstrainedPools match.

// topologyFromLabels picks the domain labels out of a node's labels.
func topologyFromLabels(labels map[string]string, domainLabels, driver string) (map[string]string, error) {
	prefix := controllerserver.TopologyPrefix(driver)
	if len(prefix) > 63 {
		return nil, fmt.Errorf("topology key prefix %q is longer than a label's 63 characters (driver name %q)", prefix, driver)
	}
	out := map[string]string{}
	var missing []string
	seen := map[string]bool{}
	for _, l := range strings.Split(domainLabels, ",") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if seen[l] {
			return nil, fmt.Errorf("--domainlabels names %q twice", l)
		}
		seen[l] = true
		v, ok := labels[l]
		if !ok {
			missing = append(missing, l)
			continue
		}
		domain := l
		if i := strings.IndexByte(l, '/'); i >= 0 {
			domain = l[i+1:]
		}
		out[prefix+"/"+domain] = v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the node lacks the domain labels %v", missing)
	}
	return out, nil
}

// nodeTopology reads the node's labels from the Kubernetes API (the pod's
// ServiceAccount in saDir, "" for the standard place; it needs get on
// nodes) and returns its topology.
func nodeTopology(ctx context.Context, node, domainLabels, driver, saDir string) (map[string]string, error) {
	d, err := kubenodes.New(driver, saDir)
	if err != nil {
		return nil, fmt.Errorf("--domainlabels needs the Kubernetes API: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	labels, err := d.NodeLabels(ctx, node)
	if err != nil {
		return nil, err
	}
	return topologyFromLabels(labels, domainLabels, driver)
}
