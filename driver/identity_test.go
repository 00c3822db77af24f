package driver

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestPluginCapabilities: online expansion always (as ceph-csi), the
// controller service with a controller, accessibility constraints only
// with topology (csi-sanity then wants NodeGetInfo to report it).
func TestPluginCapabilities(t *testing.T) {
	for _, tc := range []struct {
		o                  Options
		ctrl, topo, online bool
	}{
		{Options{Controller: &csi.UnimplementedControllerServer{}}, true, false, true},
		{Options{Controller: &csi.UnimplementedControllerServer{}, Topology: true}, true, true, true},
		{Options{Topology: true}, false, true, true},
	} {
		r, err := (&identity{o: &tc.o}).GetPluginCapabilities(context.Background(), &csi.GetPluginCapabilitiesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var ctrl, topo, online bool
		for _, c := range r.GetCapabilities() {
			switch {
			case c.GetService().GetType() == csi.PluginCapability_Service_CONTROLLER_SERVICE:
				ctrl = true
			case c.GetService().GetType() == csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS:
				topo = true
			case c.GetVolumeExpansion().GetType() == csi.PluginCapability_VolumeExpansion_ONLINE:
				online = true
			}
		}
		if ctrl != tc.ctrl || topo != tc.topo || online != tc.online {
			t.Errorf("%+v: controller %v topology %v online %v", tc.o, ctrl, topo, online)
		}
	}
}
