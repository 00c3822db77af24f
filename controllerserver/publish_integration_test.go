package controllerserver

import (
	"context"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
)

func (f *fixture) publish(vol, node string, mode csi.VolumeCapability_AccessMode_Mode, block bool) error {
	_, err := f.s.ControllerPublishVolume(f.ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol, NodeId: node,
		VolumeCapability: capOf(mode, block), Secrets: f.secrets})
	return err
}

func (f *fixture) unpublish(vol, node string) error {
	_, err := f.s.ControllerUnpublishVolume(f.ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: node, Secrets: f.secrets})
	return err
}

func (f *fixture) users(v *csi.Volume) csiceph.Users {
	f.t.Helper()
	img := f.openVolume(v)
	defer img.Close(f.ctx)
	u, err := csiceph.ReadUsers(f.ctx, img)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// TestPublishRecordsAttachments: ControllerPublish/Unpublish keep the
// image's attachments record, refuse a second node for a single-node
// volume with FailedPrecondition naming the first, are idempotent, and a
// clone does not inherit the record (metadata is copied to clones).
func TestPublishRecordsAttachments(t *testing.T) {
	f := newFixture(t, Options{Nodes: NodeSet{"a": true, "b": true, "c": true}})
	snw := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	mnmw := csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	v := f.createVolume("pub", 4<<20, nil)
	id := v.GetVolumeId()

	want := func(what string, err error, c codes.Code) {
		t.Helper()
		if status.Code(err) != c {
			t.Fatalf("%s: %v, want %v", what, err, c)
		}
	}
	for range 2 {
		want("publish to a", f.publish(id, "a", snw, false), codes.OK)
	}
	err := f.publish(id, "b", snw, false)
	want("publish to b while a has it", err, codes.FailedPrecondition)
	if s, _ := status.FromError(err); !strings.Contains(s.Message(), `"a"`) {
		t.Errorf("refusal does not name node a: %v", err)
	}
	want("publish to a read-only now", f.publish(id, "a", csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY, false), codes.AlreadyExists)
	want("publish to an unknown node", f.publish(id, "zz", snw, false), codes.NotFound)
	missing := csiceph.VolumeID{ClusterID: f.cluster, PoolID: f.io.PoolID(), Image: f.prefix + "missing"}.String()
	want("publish of a missing image", f.publish(missing, "a", snw, false), codes.NotFound)
	want("unpublish of a missing image", f.unpublish(missing, "a"), codes.OK)

	u := f.users(v)
	if u.Attachments == nil || len(u.Attachments.Nodes) != 1 || u.Attachments.Nodes["a"].Mode != snw.String() {
		t.Fatalf("attachments after publishing to a: %+v", u.Attachments)
	}
	for range 2 {
		want("unpublish b (never published)", f.unpublish(id, "b"), codes.OK)
		want("unpublish a", f.unpublish(id, "a"), codes.OK)
	}
	if u := f.users(v); !u.Attachments.IsWithdrawn("a") || len(u.Attachments.Nodes) != 0 || u.Attachments.IsWithdrawn("b") {
		t.Fatalf("attachments after unpublishing a: %+v", u.Attachments)
	}
	want("publish to b after a let go", f.publish(id, "b", snw, false), codes.OK)
	want("unpublish everywhere", f.unpublish(id, ""), codes.OK)
	if u := f.users(v); len(u.Attachments.Nodes) != 0 || !u.Attachments.IsWithdrawn("b") {
		t.Fatalf("attachments after unpublishing from every node: %+v", u.Attachments)
	}

	// Multi-node multi-writer block volumes are shared.
	blk := f.createVolume("pubblk", 4<<20, nil)
	want("block a", f.publish(blk.GetVolumeId(), "a", mnmw, true), codes.OK)
	want("block b", f.publish(blk.GetVolumeId(), "b", mnmw, true), codes.OK)
	want("single-node c next to them", f.publish(blk.GetVolumeId(), "c", snw, true), codes.FailedPrecondition)

	// A clone copies the source's metadata, record included; it is the
	// source's (its image id), so the clone is published nowhere.
	want("publish source to a", f.publish(id, "a", snw, false), codes.OK)
	clone := f.createVolume("pubclone", 4<<20, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}})
	img := f.openVolume(clone)
	md, err := img.Metadata(f.ctx)
	img.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, copied := md[csiceph.MetaAttachments]; !copied {
		t.Log("the clone did not copy the source's metadata (nothing inherited to ignore)")
	}
	if u := f.users(clone); u.Attachments != nil {
		t.Fatalf("clone inherited the source's attachments: %+v", u.Attachments)
	}
	want("publish clone to b", f.publish(clone.GetVolumeId(), "b", snw, false), codes.OK)
	want("unpublish source", f.unpublish(id, "a"), codes.OK)
	for _, vol := range []*csi.Volume{clone, blk, v} {
		f.deleteVolume(vol.GetVolumeId())
	}
	f.requireClean()
}
