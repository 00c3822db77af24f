package cephcsi

import (
	"encoding/json"
	"fmt"
)

// CapturedPV is what a Kubernetes PersistentVolume needs to name a volume
// ceph-csi created: its driver, handle and volume attributes (the volume
// context ceph-csi answered, which PVs keep forever), with the handle
// re-pointed at the replayed pool. The kubelet-level migration test builds
// a PV from it (driver rbd.csi.ceph.com, csi.volumeHandle, csi.volumeAttributes,
// nodeStageSecretRef) for csi-gorbd installed under ceph-csi's name.
type CapturedPV struct {
	Driver           string
	VolumeHandle     string
	VolumeAttributes map[string]string
	CapacityBytes    int64
}

// PV returns the CapturedPV of the volume a step's CreateVolume made.
func (r *Replayed) PV(st *State, step string) (*CapturedPV, error) {
	c, ok := st.Step(step, "CreateVolume")
	if !ok || c.Response == nil {
		return nil, fmt.Errorf("cephcsi: no successful CreateVolume in step %q", step)
	}
	var resp struct {
		Volume struct {
			VolumeID      string            `json:"volumeId"`
			CapacityBytes json.Number       `json:"capacityBytes"`
			VolumeContext map[string]string `json:"volumeContext"`
		} `json:"volume"`
	}
	if err := json.Unmarshal(c.Response, &resp); err != nil {
		return nil, err
	}
	h, err := r.Handle(resp.Volume.VolumeID)
	if err != nil {
		return nil, err
	}
	attrs := map[string]string{}
	for k, v := range resp.Volume.VolumeContext {
		attrs[k] = v
	}
	// Pool names in the context are the captured ones: re-point them.
	for _, k := range []string{"pool", "journalPool", "dataPool"} {
		if to, ok := r.Pools[attrs[k]]; ok {
			attrs[k] = to
		}
	}
	size, _ := resp.Volume.CapacityBytes.Int64()
	return &CapturedPV{Driver: st.Driver.Name, VolumeHandle: h, VolumeAttributes: attrs, CapacityBytes: size}, nil
}
