package nodeserver

import (
	"context"
	"fmt"

	"github.com/csi-gorbd/csi-gorbd/nbd"
	"github.com/csi-gorbd/csi-gorbd/nbd/attach"
	"github.com/csi-gorbd/csi-gorbd/nbd/qos"
)

// The I/O path of a staged volume beyond the image itself: its QoS
// limits (librbd's rbd_qos_* settings of the image and its pool, which
// the controller writes for StorageClass and VolumeAttributesClass
// parameters, followed live through the header watch) and its per-volume
// metrics.

// ContextPVName is the volume context key of the PersistentVolume's name
// (the controller copies it from the provisioner's --extra-create-metadata
// parameter).
const ContextPVName = "csi.storage.k8s.io/pv/name"

// VolumeMetrics receives the I/O of the volumes this node serves.
type VolumeMetrics interface {
	// Volume returns the observer of a volume's device. The same volume
	// may be opened again (a recovery) before release of the earlier
	// open is called; its series go once every open is released.
	Volume(volumeID, pvName string) (obs nbd.Observer, release func())
}

var _ attach.ExportConfigurer = (*rbdVolume)(nil)

// instrument turns on the volume's QoS limits and metrics before the
// device is served.
func (s *Server) instrument(ctx context.Context, v *rbdVolume, rec *volumeRecord) error {
	id := v.id
	_, err := v.EnableQoS(ctx, func(l qos.Limits, err error) {
		if s.o.OnQoS != nil {
			s.o.OnQoS(id, l, err)
		}
	})
	if err != nil {
		return fmt.Errorf("reading the QoS settings of volume %s: %w", id, err)
	}
	if s.o.VolumeMetrics != nil {
		v.obs, v.release = s.o.VolumeMetrics.Volume(id, rec.PVName)
	}
	return nil
}

// ConfigureExport gives every kernel connection's export the volume's
// limiter and observer.
func (v *rbdVolume) ConfigureExport(e *nbd.Export) {
	v.Backend.ConfigureExport(e)
	e.Observer = v.obs
}
