package csiceph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/csi-gorbd/csi-gorbd/rados/entity"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// Who uses a volume, kept in the image's own metadata (`rbd image-meta
// list` shows it), so that the controller, every node and an operator see
// one truth that lives and dies with the image:
//
//	csi-gorbd.attachments     written by the controller: the nodes the
//	                          volume is published to (ControllerPublish)
//	                          and the nodes it was taken from
//	                          (ControllerUnpublish, also a force-detach)
//	csi-gorbd.staged.<node>   written by a node that staged the volume
//	                          writable for a single node: the Ceph client
//	                          (global id) that holds the image there
//
// Both records carry the image id: metadata is copied to clones (as
// librbd does), and a record with another image's id is inherited, not
// ours, and ignored.
//
// Fencing reads them together: a client that holds the image's lock (or,
// without the exclusive-lock feature, watches its header) for a node that
// the attachments record as withdrawn and not published again has been
// taken from that node by the CO; the next stage blocklists it before it
// takes over (see nodeserver).
const (
	MetaAttachments  = "csi-gorbd.attachments"
	MetaStagedPrefix = "csi-gorbd.staged."
)

// maxWithdrawn bounds the withdrawn nodes an attachments record keeps
// (the oldest go first).
const maxWithdrawn = 16

// Attachments is the controller's record of a volume's publications.
type Attachments struct {
	Image string `json:"image"` // the image id this record belongs to
	// Nodes are the nodes the volume is published to.
	Nodes map[string]Attachment `json:"nodes"`
	// Withdrawn are nodes the volume was unpublished from (unix seconds),
	// until they are published again.
	Withdrawn map[string]int64 `json:"withdrawn,omitempty"`
}

// Attachment is one node's publication.
type Attachment struct {
	Mode     string `json:"mode"` // the CSI access mode's name
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// SingleNode reports whether an access mode allows one node only.
func SingleNode(m csi.VolumeCapability_AccessMode_Mode) bool {
	switch m {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		return true
	}
	return false
}

// SingleWriter reports whether a stage in mode must hold the image alone
// (the exclusive lock, or no other watcher): the writable single-node
// modes.
func SingleWriter(m csi.VolumeCapability_AccessMode_Mode) bool {
	return SingleNode(m) && !ReadOnlyMode(m)
}

// Publish adds node with mode, idempotently. A single-node mode needs
// the volume published nowhere else, and no node holds it in one while
// another asks: both are ErrPublished, naming the node. The same node
// asking again with another mode or read-only flag is ErrExists (CSI's
// AlreadyExists). It reports whether the record changed.
func (a *Attachments) Publish(node string, m csi.VolumeCapability_AccessMode_Mode, readOnly bool) (bool, error) {
	want := Attachment{Mode: m.String(), ReadOnly: readOnly}
	if got, ok := a.Nodes[node]; ok {
		if got != want {
			return false, fmt.Errorf("%w: volume is published to node %q as %s (read-only %v), not %s (read-only %v)",
				ErrPublishedOther, node, got.Mode, got.ReadOnly, want.Mode, want.ReadOnly)
		}
		return false, nil
	}
	for _, n := range slices.Sorted(maps.Keys(a.Nodes)) {
		other := a.Nodes[n]
		if SingleNode(m) || SingleNode(csi.VolumeCapability_AccessMode_Mode(csi.VolumeCapability_AccessMode_Mode_value[other.Mode])) {
			return false, fmt.Errorf("%w: it is published to node %q as %s", ErrPublished, n, other.Mode)
		}
	}
	if a.Nodes == nil {
		a.Nodes = map[string]Attachment{}
	}
	a.Nodes[node] = want
	delete(a.Withdrawn, node)
	return true, nil
}

// Unpublish removes node, remembering it as withdrawn at now; a node
// not published is no change (false).
func (a *Attachments) Unpublish(node string, now time.Time) bool {
	if _, ok := a.Nodes[node]; !ok {
		return false
	}
	delete(a.Nodes, node)
	if a.Withdrawn == nil {
		a.Withdrawn = map[string]int64{}
	}
	a.Withdrawn[node] = now.Unix()
	for len(a.Withdrawn) > maxWithdrawn {
		oldest := ""
		for n, t := range a.Withdrawn {
			if oldest == "" || t < a.Withdrawn[oldest] || (t == a.Withdrawn[oldest] && n < oldest) {
				oldest = n
			}
		}
		delete(a.Withdrawn, oldest)
	}
	return true
}

// IsWithdrawn reports whether the volume was taken from node and not
// published to it again.
func (a *Attachments) IsWithdrawn(node string) bool {
	if a == nil {
		return false
	}
	_, w := a.Withdrawn[node]
	_, on := a.Nodes[node]
	return w && !on
}

// Stage is a node's record of the Ceph client holding the volume there.
type Stage struct {
	Image  string `json:"image"`  // the image id
	Node   string `json:"node"`   // the node id
	Client int64  `json:"client"` // the global id of the client.<id> holding it
	Mode   string `json:"mode"`
	Time   int64  `json:"time"` // unix seconds of the stage
}

// Entity is the stage's Ceph client.
func (s Stage) Entity() entity.NumName {
	return entity.NumName{Type: entity.TypeClient, Num: s.Client}
}

// Users is what an image's metadata says about who uses it.
type Users struct {
	Attachments *Attachments // nil: never published (or published by no controller that records it)
	Stages      []Stage      // by node
}

// ReadUsers reads the attachments and stage records of img; records that
// belong to another image (inherited by a clone) or do not decode are
// left out.
func ReadUsers(ctx context.Context, img *rbd.Image) (Users, error) {
	md, err := img.Metadata(ctx)
	if err != nil {
		return Users{}, err
	}
	id := img.Stat().ID
	var u Users
	if b, ok := md[MetaAttachments]; ok {
		var a Attachments
		if json.Unmarshal(b, &a) == nil && a.Image == id {
			u.Attachments = &a
		}
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if !strings.HasPrefix(k, MetaStagedPrefix) {
			continue
		}
		var s Stage
		if json.Unmarshal(md[k], &s) == nil && s.Image == id && s.Node == strings.TrimPrefix(k, MetaStagedPrefix) {
			u.Stages = append(u.Stages, s)
		}
	}
	return u, nil
}

// Holder returns the stage record of client n, if any.
func (u Users) Holder(n entity.NumName) (Stage, bool) {
	for _, s := range u.Stages {
		if s.Entity() == n {
			return s, true
		}
	}
	return Stage{}, false
}

// Withdrawn reports whether client n holds the image for a node the
// volume was withdrawn from (and not published to again): the CO took
// the volume from that node, so the client may be fenced. A client with
// no stage record, or an image with no attachments record, is never
// withdrawn.
func (u Users) Withdrawn(n entity.NumName) bool {
	s, ok := u.Holder(n)
	return ok && u.Attachments.IsWithdrawn(s.Node)
}

// Describe names client n (and the node it holds the image for, when a
// stage record says so) for error messages.
func (u Users) Describe(n entity.NumName, addr entity.Addr) string {
	d := fmt.Sprintf("%v at %v", n, addr)
	if s, ok := u.Holder(n); ok {
		d += fmt.Sprintf(" (node %q)", s.Node)
	}
	return d
}

// WriteAttachments stores a.
func WriteAttachments(ctx context.Context, img *rbd.Image, a *Attachments) error {
	a.Image = img.Stat().ID
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return img.SetMetadata(ctx, MetaAttachments, b)
}

// WriteStage stores node's stage record.
func WriteStage(ctx context.Context, img *rbd.Image, s Stage) error {
	s.Image = img.Stat().ID
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return img.SetMetadata(ctx, MetaStagedPrefix+s.Node, b)
}

// RemoveStage removes node's stage record; a missing one is no error.
func RemoveStage(ctx context.Context, img *rbd.Image, node string) error {
	err := img.RemoveMetadata(ctx, MetaStagedPrefix+node)
	if errors.Is(err, rbd.ErrNotFound) {
		return nil
	}
	return err
}
