package controllerserver

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// ControllerPublishVolume records that the volume is published to the
// node (the image's csi-gorbd.attachments metadata, see package
// internal/csiceph). Nothing is attached here: the node plugin attaches
// the image itself at NodeStageVolume. What this adds is Kubernetes'
// single-writer promise checked where the data lives: a single-node
// volume published to another node is FailedPrecondition, and the
// record lets the next node fence a holder the CO has withdrawn (see
// ControllerUnpublishVolume and nodeserver).
//
// A request without secrets (a PersistentVolume made before its
// StorageClass named a controller-publish secret) cannot reach Ceph: it
// succeeds without a record, which leaves the node-level lock as the only
// guard and fencing to the lock's own dead-owner rule.
func (s *Server) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	volID, node := req.GetVolumeId(), req.GetNodeId()
	if err := csiceph.Required("volume_id", volID, "node_id", node); err != nil {
		return nil, err
	}
	vc := req.GetVolumeCapability()
	if vc == nil {
		return nil, status.Error(codes.InvalidArgument, "volume_capability is required")
	}
	if err := csiceph.CheckCapabilities([]*csi.VolumeCapability{vc}); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id, err := csiceph.ParseVolumeID(volID)
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q is not a volume of this driver: %v", volID, err)
	}
	if err := s.checkNode(ctx, node); err != nil {
		return nil, err
	}
	if len(req.GetSecrets()) == 0 {
		return &csi.ControllerPublishVolumeResponse{}, nil
	}
	mode := vc.GetAccessMode().GetMode()
	err = s.updateAttachments(ctx, id, node, req.GetSecrets(), func(a *csiceph.Attachments) (bool, error) {
		return a.Publish(node, mode, req.GetReadonly())
	})
	if err != nil {
		return nil, err
	}
	return &csi.ControllerPublishVolumeResponse{}, nil
}

// ControllerUnpublishVolume removes the node from the volume's
// attachments and remembers it as withdrawn: from then on a client that
// still holds the image for that node (a partitioned node, one the CO
// force-detached) is fenced by the next node that stages the volume.
// Without a node id the volume is unpublished from every node. A volume,
// image or node that is not recorded is success.
func (s *Server) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	volID, node := req.GetVolumeId(), req.GetNodeId()
	if err := csiceph.Required("volume_id", volID); err != nil {
		return nil, err
	}
	id, err := csiceph.ParseVolumeID(volID)
	if err != nil || len(req.GetSecrets()) == 0 {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	now := time.Now()
	err = s.updateAttachments(ctx, id, node, req.GetSecrets(), func(a *csiceph.Attachments) (bool, error) {
		if node != "" {
			return a.Unpublish(node, now), nil
		}
		changed := false
		for n := range a.Nodes {
			changed = a.Unpublish(n, now) || changed
		}
		return changed, nil
	})
	if status.Code(err) == codes.NotFound {
		return &csi.ControllerUnpublishVolumeResponse{}, nil // the volume is gone: nothing is published
	}
	if err != nil {
		return nil, err
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// updateAttachments reads the volume's attachments record, lets change
// edit it and writes it back when change reports a change. The per-image
// lock serialises the read-modify-write with every other request of this
// controller on the image (one active controller: leader election).
func (s *Server) updateAttachments(ctx context.Context, id csiceph.VolumeID, node string, secrets map[string]string,
	change func(*csiceph.Attachments) (bool, error)) error {
	se, v, done, err := s.begin(ctx, "attach/"+id.String()+"/"+node, id, secrets, true)
	if err != nil {
		return gone(err, "volume "+id.String())
	}
	defer done()
	// No watch, no lock: the record is metadata, and the node that holds
	// the image must see no other user come and go.
	img, err := rbd.Open(ctx, v.io, v.image, &rbd.OpenOptions{NoWatch: true})
	if err != nil {
		return se.volumeErr(v, err)
	}
	defer se.s.closeImage(ctx, img, v.image)
	u, err := csiceph.ReadUsers(ctx, img)
	if err != nil {
		return se.fail(err)
	}
	a := u.Attachments
	if a == nil {
		a = &csiceph.Attachments{}
	}
	changed, err := change(a)
	if err != nil {
		return csiceph.Status(err, fmt.Sprintf("volume %s, node %q", id, node))
	}
	if !changed {
		return nil
	}
	if err := csiceph.WriteAttachments(ctx, img, a); err != nil {
		return se.fail(err)
	}
	return nil
}

// checkNode answers NotFound for a node the node directory does not know
// (no directory: every node exists).
func (s *Server) checkNode(ctx context.Context, node string) error {
	if s.nodes == nil {
		return nil
	}
	ok, err := s.nodes.NodeExists(ctx, node)
	if err != nil {
		return status.Errorf(codes.Unavailable, "looking up node %q: %v", node, err)
	}
	if !ok {
		return status.Errorf(codes.NotFound, "node %q has no node plugin of this driver registered", node)
	}
	return nil
}

// NodeSet is a fixed NodeDirectory: the node ids it holds exist.
type NodeSet map[string]bool

// NodeExists implements NodeDirectory.
func (n NodeSet) NodeExists(_ context.Context, id string) (bool, error) { return n[id], nil }
