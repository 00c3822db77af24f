package controllerserver

import (
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

// Topology-constrained pools, as ceph-csi places them
// (internal/util/topology.go): the node plugins report topology segments
// topology.<driver name>/<domain> (the domain is a node label's name after
// its first '/'), and a StorageClass's topologyConstrainedPools says which
// pool serves which domain values. CreateVolume walks the request's
// preferred, then requisite, topologies and takes the first pool all of
// whose domain segments one of them matches; the volume is accessible from
// that topology. Without accessibility requirements the StorageClass's pool
// is used.

// TopologyPrefix is the prefix of the topology keys a driver reports.
func TopologyPrefix(driver string) string { return strings.ToLower("topology." + driver) }

// pickPool chooses the image's pool and data pool, and the topology the
// volume is accessible from (nil: no constraint).
func pickPool(p csiceph.VolumeParams, req *csi.TopologyRequirement, driver string) (pool, dataPool string, topo map[string]string, err error) {
	if len(p.Topology) == 0 || req == nil || (len(req.GetPreferred()) == 0 && len(req.GetRequisite()) == 0) {
		if p.Pool == "" {
			return "", "", nil, status.Errorf(codes.InvalidArgument,
				"parameter %s names no pool for a request without accessibility requirements: set parameter %s too",
				csiceph.ParamTopologyPools, csiceph.ParamPool)
		}
		return p.Pool, p.DataPool, nil, nil
	}
	for _, set := range [][]*csi.Topology{req.GetPreferred(), req.GetRequisite()} {
		for _, t := range set {
			if tp, ok := matchTopology(p.Topology, t); ok {
				return tp.PoolName, tp.DataPool, t.GetSegments(), nil
			}
		}
	}
	return "", "", nil, status.Errorf(codes.ResourceExhausted,
		"none of the pools of parameter %s serves the requested topology %v", csiceph.ParamTopologyPools, req)
}

// matchTopology returns the first pool whose every domain segment t has.
func matchTopology(pools []csiceph.TopologyPool, t *csi.Topology) (csiceph.TopologyPool, bool) {
	domains := map[string]string{}
	for k, v := range t.GetSegments() {
		_, domain, ok := strings.Cut(k, "/")
		if !ok {
			domain = k
		}
		domains[domain] = v
	}
	for _, tp := range pools {
		match := true
		for _, seg := range tp.DomainSegments {
			if v, ok := domains[seg.DomainLabel]; !ok || v != seg.Value {
				match = false
				break
			}
		}
		if match {
			return tp, true
		}
	}
	return csiceph.TopologyPool{}, false
}
