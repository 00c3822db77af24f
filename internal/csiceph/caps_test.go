package csiceph

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func capOf(mode csi.VolumeCapability_AccessMode_Mode, block bool) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	}
	return c
}

func TestCheckCapabilities(t *testing.T) {
	M := csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	for _, tc := range []struct {
		c  *csi.VolumeCapability
		ok bool
	}{
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, false), true},
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, false), true},
		{capOf(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER, true), true},
		{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, false), true},
		{capOf(M, true), true},
		{capOf(M, false), false},
		{capOf(csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER, false), false},
		{capOf(csi.VolumeCapability_AccessMode_UNKNOWN, false), false},
		{&csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: M}}, false},
		{&csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}}, false},
	} {
		if err := CheckCapabilities([]*csi.VolumeCapability{tc.c}); (err == nil) != tc.ok {
			t.Errorf("%v: err=%v, want ok=%v", tc.c, err, tc.ok)
		}
	}
	if CheckCapabilities(nil) == nil {
		t.Error("no capabilities accepted")
	}
}

func TestRequired(t *testing.T) {
	if err := Required("volume_id", "v", "target_path", "/t"); err != nil {
		t.Errorf("all present: %v", err)
	}
	err := Required("volume_id", "v", "target_path", "", "staging_target_path", "")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "target_path is required") {
		t.Errorf("missing target_path: %v", err)
	}
}
