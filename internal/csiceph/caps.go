package csiceph

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// CheckCapabilities accepts what an RBD image can honour: any single-node
// mode, multi-node read-only, and multi-node multi-writer for raw block
// only (a filesystem would be corrupted by two writers).
func CheckCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return fmt.Errorf("volume capabilities are required")
	}
	for _, c := range caps {
		block := c.GetBlock() != nil
		if !block && c.GetMount() == nil {
			return fmt.Errorf("access type must be mount or block")
		}
		if c.GetAccessMode() == nil {
			return fmt.Errorf("access mode is required")
		}
		switch m := c.GetAccessMode().GetMode(); m {
		case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
			csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER,
			csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		case csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
			if !block {
				return fmt.Errorf("access mode %s needs access type block", m)
			}
		default:
			return fmt.Errorf("access mode %s is not supported", m)
		}
	}
	return nil
}

// ReadOnlyMode reports whether an access mode only reads.
func ReadOnlyMode(m csi.VolumeCapability_AccessMode_Mode) bool {
	return m == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY ||
		m == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
}
