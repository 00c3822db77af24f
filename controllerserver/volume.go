package controllerserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/csi-gorbd/csi-gorbd/internal/csiceph"
	"github.com/csi-gorbd/csi-gorbd/internal/csicrypt"
	"github.com/csi-gorbd/csi-gorbd/internal/journal"
	"github.com/csi-gorbd/csi-gorbd/rbd"
)

// createRequest is a checked CreateVolume request.
type createRequest struct {
	name   string
	params csiceph.VolumeParams
	size   uint64
	cap    *csi.CapacityRange
	// source is the content source's id ("": a blank volume); one of
	// srcSnap and srcVol is set with it.
	source  string
	srcSnap *csiceph.SnapshotID
	srcVol  *csiceph.VolumeID
	// pool and dataPool are where the image goes (the StorageClass's, or
	// the topology pool the accessibility requirements chose), topology
	// the segments it is accessible from (nil: everywhere).
	pool, dataPool string
	topology       map[string]string
	// qos are the StorageClass's QoS parameters with the
	// VolumeAttributesClass's (the mutable parameters) over them.
	qos csiceph.QoSRequest
	// secrets are the request's (the KMS of an encrypted volume reads
	// its passphrase from them).
	secrets map[string]string
}

// parseCreate checks a CreateVolume request.
func (s *Server) parseCreate(req *csi.CreateVolumeRequest) (createRequest, error) {
	cr := createRequest{name: req.GetName(), cap: req.GetCapacityRange(), secrets: req.GetSecrets()}
	if cr.name == "" {
		return cr, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := csiceph.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return cr, status.Error(codes.InvalidArgument, err.Error())
	}
	p := req.GetParameters()
	if fs := mountFSType(req.GetVolumeCapabilities()); fs != "" && p[csiceph.ParamMkfsOptions] != "" && p[csiceph.ParamFSType] == "" {
		// mkfsOptions are checked against the filesystem the node makes.
		p = copyWith(p, csiceph.ParamFSType, fs)
	}
	var err error
	if cr.params, err = csiceph.ParseVolumeParams(p); err != nil {
		return cr, status.Error(codes.InvalidArgument, err.Error())
	}
	if fs := mountFSType(req.GetVolumeCapabilities()); fs != "" {
		cr.params.Context[csiceph.ParamFSType] = fs
	}
	if cr.size, err = RoundCapacity(cr.cap); err != nil {
		return cr, status.Error(codes.OutOfRange, err.Error())
	}
	if cr.qos, err = parseCreateQoS(p, req.GetMutableParameters()); err != nil {
		return cr, err
	}
	if cr.pool, cr.dataPool, cr.topology, err = pickPool(cr.params, req.GetAccessibilityRequirements(), s.driver); err != nil {
		return cr, err
	}
	cs := req.GetVolumeContentSource()
	switch {
	case cs == nil:
	case cs.GetSnapshot() != nil:
		id, err := csiceph.ParseSnapshotID(cs.GetSnapshot().GetSnapshotId())
		if err != nil {
			return cr, status.Errorf(codes.NotFound, "source snapshot: %v", err)
		}
		cr.srcSnap, cr.source = &id, id.String()
	case cs.GetVolume() != nil:
		id, err := csiceph.ParseVolumeID(cs.GetVolume().GetVolumeId())
		if err != nil {
			return cr, status.Errorf(codes.NotFound, "source volume: %v", err)
		}
		cr.srcVol, cr.source = &id, id.String()
	default:
		return cr, status.Error(codes.InvalidArgument, "unknown volume content source")
	}
	return cr, nil
}

// mountFSType is the filesystem type the capabilities ask for ("" for
// none or block).
func mountFSType(caps []*csi.VolumeCapability) string {
	for _, c := range caps {
		if fs := c.GetMount().GetFsType(); fs != "" {
			return fs
		}
	}
	return ""
}

func copyWith(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// CreateVolume makes (or finds, for a repeated name) an RBD image,
// journalled the ceph-csi way.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	cr, err := s.parseCreate(req)
	if err != nil {
		return nil, err
	}
	ci, err := s.conns.Clusters().Lookup(cr.params.ClusterID)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "%v; fix the StorageClass parameter clusterID or the clusters file", err)
	}
	if cr.params.RadosNamespaceSet && cr.params.RadosNamespace != ci.Namespace() {
		return nil, status.Errorf(codes.InvalidArgument,
			"parameter radosNamespace %q differs from the clusterID %q's rbd.radosNamespace %q in the clusters file (config.json), which is where volumes go",
			cr.params.RadosNamespace, ci.ClusterID, ci.Namespace())
	}
	if len(cr.params.ClusterID) > csiceph.MaxClusterIDLen {
		return nil, status.Errorf(codes.InvalidArgument, "clusterID %q is longer than the %d characters a volume handle carries",
			cr.params.ClusterID, csiceph.MaxClusterIDLen)
	}
	if len(cr.params.Mechanism) > 0 {
		s.log.Info("StorageClass parameters choose how ceph-csi's node maps volumes (krbd or rbd-nbd); they do not apply to this driver, whose node serves NBD from its own process",
			"volume", cr.name, "parameters", cr.params.Mechanism)
	}
	release, err := s.guard("volume-name/" + cr.name)
	if err != nil {
		return nil, err
	}
	defer release()

	se, err := s.open(ctx, cr.params.ClusterID, req.GetSecrets(), cr.pool, 0)
	if err != nil {
		return nil, err
	}
	rec, found, err := se.reserveVolume(ctx, cr)
	if err != nil {
		return nil, err
	}
	if err := se.makeImage(ctx, cr, rec); err != nil {
		if !found {
			// A failed request leaves nothing behind: what this call
			// made goes, with its reservation.
			s.cleanup(ctx, fmt.Sprintf("image %s and the journal entry of volume %q (a retry of the request finishes them)", rec.Image, cr.name),
				func(ctx context.Context) error { return se.undoCreate(ctx, cr.name, rec) })
		}
		return nil, err
	}
	if err := se.finishVolume(ctx, cr, rec); err != nil {
		return nil, se.fail(err)
	}
	return &csi.CreateVolumeResponse{Volume: se.csiVolume(cr, rec, req.GetVolumeContentSource())}, nil
}

// csiVolume is CreateVolume's answer: the handle, and the volume context
// ceph-csi gives (the parameters, the pool, journal pool, image name and
// RADOS namespace), which PVs keep and the node gets.
func (se *session) csiVolume(cr createRequest, rec volumeRecord, src *csi.VolumeContentSource) *csi.Volume {
	vctx := map[string]string{}
	for k, v := range cr.params.Context {
		vctx[k] = v
	}
	vctx[csiceph.ParamClusterID] = cr.params.ClusterID
	vctx[csiceph.ParamPool] = cr.params.Pool
	vctx[csiceph.ContextImageName] = rec.Image
	if rec.UUID != "" {
		vctx[csiceph.ContextJournalPool] = se.io.PoolName()
	}
	if ns := se.io.Namespace(); ns != "" {
		vctx[csiceph.ContextRadosNS] = ns
	}
	if cr.dataPool != "" {
		vctx[csiceph.ParamDataPool] = cr.dataPool
	}
	if cr.params.PVName != "" {
		vctx[csiceph.ParamPVName] = cr.params.PVName // the node's metrics label
	}
	vol := &csi.Volume{
		VolumeId:      se.volumeHandle(rec),
		CapacityBytes: int64(rec.Size),
		VolumeContext: vctx,
		ContentSource: src,
	}
	if cr.topology != nil {
		vol.AccessibleTopology = []*csi.Topology{{Segments: cr.topology}}
	}
	return vol
}

// volumeHandle is the id of the volume rec in the session's pool.
func (se *session) volumeHandle(rec volumeRecord) string {
	if rec.UUID == "" {
		return csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), Image: rec.Image}.String()
	}
	return csiceph.VolumeID{ClusterID: se.cluster, PoolID: se.io.PoolID(), UUID: rec.UUID}.String()
}

// reserveVolume finds the journal entry of the request name, or makes
// one (found false) with a new uuid and image name. An entry that does
// not match the request is AlreadyExists. An entry this driver wrote in
// its legacy format is honoured as it is (a creation begun before an
// upgrade finishes as it began).
func (se *session) reserveVolume(ctx context.Context, cr createRequest) (rec volumeRecord, found bool, err error) {
	j := se.volJournal()
	dv, e, err := j.Find(ctx, cr.name)
	switch {
	case err == nil && dv.Legacy != nil:
		if err := jsonUnmarshal(dv.Legacy, &rec); err != nil {
			return rec, true, status.Errorf(codes.Internal, "journal entry of volume %q: %v", cr.name, err)
		}
	case err == nil:
		if dv.PoolID >= 0 && dv.PoolID != se.io.PoolID() {
			return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with its image in pool id %d", cr.name, dv.PoolID)
		}
		rec = volumeRecord{Image: j.ImageName(e), UUID: e.UUID, Source: e.Attrs[journal.KeyContentSource], Size: cr.size}
		if n, perr := strconv.ParseUint(e.Attrs[keySize], 10, 64); perr == nil {
			rec.Size = n
		} else if size, serr := se.imageSize(ctx, rec.Image); serr == nil {
			rec.Size = size // ceph-csi's entry: the image says
		}
		if rec.Source == "" && cr.source != "" {
			rec.Source = cr.source // ceph-csi records no source
		}
	case errors.Is(err, journal.ErrNotFound):
		return se.newVolume(ctx, cr)
	case errors.Is(err, journal.ErrConflict):
		return rec, true, status.Errorf(codes.Internal, "volume %q: %v", cr.name, err)
	default:
		return rec, false, se.fail(err)
	}
	if rec.Source != cr.source {
		return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with another content source", cr.name)
	}
	if err == nil && dv.Legacy == nil {
		want := ""
		if cr.params.Encryption != nil {
			want = cr.params.Encryption.KMSID
		}
		if got := e.Attrs[journal.KeyEncryptKMS]; got != want {
			return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with encryptionKMSID %q, not %q", cr.name, got, want)
		}
	}
	if !fits(rec.Size, cr.cap) {
		return rec, true, status.Errorf(codes.AlreadyExists, "volume %q exists with size %d", cr.name, rec.Size)
	}
	if cr.srcVol != nil && rec.CloneSnap == "" {
		rec.CloneSnap = cloneSnapPrefix + rec.Image
	}
	return rec, true, nil
}

// keySize is the size a volume was asked with (csi-gorbd's key: a repeat
// must fit it even while the image is not fully grown).
const keySize = "csi.gorbd.size"

// newVolume reserves a journal entry for a new volume: csi.volname, the
// image name (the StorageClass's prefix and the uuid), the PVC namespace
// as owner, and what it was asked with.
func (se *session) newVolume(ctx context.Context, cr createRequest) (volumeRecord, bool, error) {
	uuid := journal.NewUUID()
	rec := volumeRecord{Image: cr.params.NamePrefix + uuid, UUID: uuid, Size: cr.size, Source: cr.source}
	if cr.srcVol != nil {
		rec.CloneSnap = cloneSnapPrefix + rec.Image
	}
	attrs := map[string]string{journal.KeyImageName: rec.Image, keySize: strconv.FormatUint(rec.Size, 10)}
	if cr.source != "" {
		attrs[journal.KeyContentSource] = cr.source
	}
	if cr.params.PVCNamespace != "" {
		attrs[journal.KeyOwner] = cr.params.PVCNamespace
	}
	for k, v := range encAttrs(cr.params.Encryption) {
		attrs[k] = v
	}
	if _, err := se.volJournal().Reserve(ctx, cr.name, attrs, uuid); err != nil {
		se.s.cleanup(ctx, fmt.Sprintf("the journal entry of volume %q (a retry of the request uses it)", cr.name),
			func(ctx context.Context) error { return se.volJournal().Release(ctx, cr.name, uuid) })
		return rec, false, se.fail(err)
	}
	return rec, false, nil
}

// finishVolume records the image id in the journal (ceph-csi reads it;
// it writes it itself when missing) and, on the image, the PV and PVC the
// external-provisioner named (ceph-csi's --setmetadata keys).
func (se *session) finishVolume(ctx context.Context, cr createRequest, rec volumeRecord) error {
	img, err := rbd.Open(ctx, se.io, rec.Image, nil)
	if err != nil {
		return err
	}
	defer se.s.closeImage(ctx, img, rec.Image)
	if rec.UUID != "" {
		if err := se.volJournal().SetAttrs(ctx, rec.UUID, map[string]string{journal.KeyImageID: img.Stat().ID}); err != nil {
			return err
		}
	}
	for k, v := range map[string]string{csiceph.ParamPVName: cr.params.PVName, csiceph.ParamPVCName: cr.params.PVCName,
		csiceph.ParamPVCNamespace: cr.params.PVCNamespace} {
		if v == "" {
			continue
		}
		if err := img.SetMetadata(ctx, k, []byte(v)); err != nil {
			return err
		}
	}
	return applyQoS(ctx, img, cr.qos)
}

// undoCreate removes what a failed CreateVolume made: the image, if it
// got that far (with what it holds on its parent), and the journal
// entries.
func (se *session) undoCreate(ctx context.Context, name string, rec volumeRecord) error {
	if err := se.deleteImage(ctx, rec.Image); err != nil {
		return err
	}
	if rec.UUID == "" {
		return se.legacyVolJournal().remove(ctx, volKeyPrefix+name, imageKeyPrefix+rec.Image)
	}
	return se.volJournal().Release(ctx, name, rec.UUID)
}

// makeImage creates the journalled image unless it exists, and grows it
// to the journalled size (a clone is made at its source's size; a retry
// finishes one whose growing failed).
func (se *session) makeImage(ctx context.Context, cr createRequest, rec volumeRecord) error {
	size, err := se.imageSize(ctx, rec.Image)
	if notFound(err) {
		size, err = se.createImage(ctx, cr, rec)
	}
	if err != nil {
		return se.fail(err)
	}
	if cr.params.Encryption != nil {
		return se.encryptImage(ctx, cr, rec, cr.secrets)
	}
	if size >= rec.Size {
		return nil
	}
	img, err := rbd.Open(ctx, se.io, rec.Image, nil)
	if err != nil {
		return se.fail(err)
	}
	defer se.s.closeImage(ctx, img, rec.Image)
	if err := img.Resize(ctx, rec.Size); err != nil {
		return se.fail(err)
	}
	return nil
}

// imageSize returns the size of the image called name.
func (se *session) imageSize(ctx context.Context, name string) (uint64, error) {
	img, err := rbd.Open(ctx, se.io, name, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer se.s.closeImage(ctx, img, name)
	return img.Size(), nil
}

// createOptions are the image's features and layout: the StorageClass's,
// else the cluster's rbd_default_* options, else layering and 4 MiB
// objects.
func (se *session) createOptions(ctx context.Context, cr createRequest) (*rbd.CreateOptions, error) {
	co := se.s.conns.Clusters()[se.cluster].Options
	opts := &rbd.CreateOptions{Features: cr.params.Features, Order: cr.params.Order,
		StripeUnit: cr.params.StripeUnit, StripeCount: cr.params.StripeCount}
	if opts.Features == 0 {
		opts.Features = co.DefaultFeatures
	}
	if opts.Features == 0 {
		opts.Features = rbd.FeatureLayering
	}
	if opts.Order == 0 {
		opts.Order = co.DefaultOrder
	}
	if opts.StripeUnit != 0 {
		order := opts.Order
		if order == 0 {
			order = 22
		}
		if opts.StripeUnit > 1<<order || (uint64(1)<<order)%opts.StripeUnit != 0 {
			return nil, status.Errorf(codes.InvalidArgument, "parameter stripeUnit %d must divide the object size %d", opts.StripeUnit, uint64(1)<<order)
		}
	}
	if cr.dataPool != "" {
		id, err := se.io.Conn().LookupPool(ctx, cr.dataPool)
		if err != nil {
			if notFound(err) {
				return nil, status.Errorf(codes.InvalidArgument, "data pool %q (parameter dataPool) does not exist: %v", cr.dataPool, err)
			}
			return nil, err
		}
		opts.DataPool, opts.DataPoolSet = id, true
	}
	return opts, nil
}

// createImage makes the journalled image: blank, or a clone of the
// content source (flattened later when its chain is too deep). It returns
// the size it made.
func (se *session) createImage(ctx context.Context, cr createRequest, rec volumeRecord) (uint64, error) {
	opts, err := se.createOptions(ctx, cr)
	if err != nil {
		return 0, err
	}
	if cr.srcSnap == nil && cr.srcVol == nil {
		size := rec.Size
		if cr.params.Encryption != nil {
			// Room for the header area (encryptImage grows the image
			// further if the layout's header is larger).
			size += csicrypt.DMCryptHeader
		}
		_, err := rbd.Create(ctx, se.io, rec.Image, size, opts)
		return size, err
	}
	// A clone is made at least as large as its source, the plaintext
	// compared for encrypted ones; mixing encrypted and plain is refused.
	src, err := se.checkSourceEncryption(ctx, cr, cr.secrets)
	if err != nil {
		return 0, err
	}
	crec := rec
	if src != nil {
		off, err := csicrypt.DataOffset(ctx, src.img)
		se.closeSource(ctx, src)
		if err != nil {
			return 0, err
		}
		crec.Size += off
	}
	var size uint64
	if cr.srcSnap != nil {
		size, err = se.cloneFromSnapshot(ctx, *cr.srcSnap, crec, opts)
	} else {
		size, err = se.cloneFromVolume(ctx, *cr.srcVol, crec, opts)
	}
	if err != nil {
		return 0, err
	}
	max := se.s.maxDepth
	if cr.params.MaxCloneDepth > 0 {
		max = cr.params.MaxCloneDepth
	}
	if depth, derr := se.chainDepth(ctx, rec.Image); derr == nil && depth > max {
		se.flattenLater(rec.Image)
	}
	return size, nil
}

// DeleteVolume removes the image and its journal entries; an unknown or
// already deleted volume is success. For ceph-csi's volumes that includes
// the <image>-temp image its clones hang from.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.DeleteVolumeResponse{}, nil // never a volume of this format: nothing to delete
	}
	se, v, done, err := s.begin(ctx, "volume-id/"+req.GetVolumeId(), id, req.GetSecrets(), true)
	if errors.Is(err, errGone) {
		return &csi.DeleteVolumeResponse{}, nil // the pool or the journal entry is gone: deleted already
	}
	if err != nil {
		return nil, err
	}
	defer done()
	// Only what this driver created is deleted: an id that leads to an
	// image its journal does not know (a static PV's hand-written handle,
	// another instance's volume) deletes nothing.
	if why, err := se.notJournalled(ctx, v); err != nil {
		return nil, se.fail(err)
	} else if why != "" {
		s.log.Info("DeleteVolume deletes nothing: the image was not created by this driver", "volume", req.GetVolumeId(),
			"pool", se.io.PoolName(), "image", v.image, "reason", why)
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err := se.deleteImage(ctx, v.image); err != nil {
		return nil, se.fail(err)
	}
	if id.Legacy() {
		if err := se.legacyVolJournal().forget(ctx, imageKeyPrefix+id.Image, volKeyPrefix); err != nil {
			return nil, se.fail(err)
		}
		return &csi.DeleteVolumeResponse{}, nil
	}
	// ceph-csi's clone of a volume hangs from a hidden <image>-temp image;
	// it goes with the volume (after it, so its snapshot has no child).
	if err := se.deleteImage(ctx, v.image+cephCSITempSuffix); err != nil {
		return nil, se.fail(err)
	}
	if err := se.volJournal().Release(ctx, v.entry.Name(), v.entry.UUID); err != nil {
		return nil, se.fail(err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// notJournalled says why the journal of this driver's instance does not
// know v's image as a volume it created ("" when it does): for a legacy
// id the journal's csi.image.<image> key, for a ceph-csi handle the
// directory key of the entry's request name, which must name the entry.
func (se *session) notJournalled(ctx context.Context, v *volRef) (string, error) {
	if v.id.Legacy() {
		var name string
		found, err := se.legacyVolJournal().get(ctx, imageKeyPrefix+v.image, &name)
		if err != nil || found {
			return "", err
		}
		return fmt.Sprintf("journal %s has no key %s%s", VolumeJournalObject(se.s.instance), imageKeyPrefix, v.image), nil
	}
	j := se.volJournal()
	name := v.entry.Name()
	dv, err := j.Lookup(ctx, name)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return fmt.Sprintf("journal %s has no request %q (entry %s)", j.DirObject(), name, j.EntryObject(v.entry.UUID)), nil
	case err != nil:
		return "", err
	case dv.UUID != v.entry.UUID:
		return fmt.Sprintf("journal %s maps request %q to %q, not to entry %s", j.DirObject(), name, dv.UUID, v.entry.UUID), nil
	}
	return "", nil
}

// cephCSITempSuffix names the intermediate image of ceph-csi's volume
// clones (internal/rbd/clone.go).
const cephCSITempSuffix = "-temp"

// deleteImage removes the image called name, or moves it to the trash
// when snapshots it must keep serving remain, then collects what it held
// on its parent. A missing (or already trashed) image is success.
func (se *session) deleteImage(ctx context.Context, name string) error {
	img, err := rbd.Open(ctx, se.io, name, nil)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return err
	}
	left, err := dropDeadSnaps(ctx, img)
	info := img.Stat()
	se.s.closeImage(ctx, img, name)
	if err != nil {
		return err
	}
	if left > 0 {
		if _, err := rbd.TrashMove(ctx, se.io, name, 0); err != nil && !notFound(err) {
			return err
		}
		return nil
	}
	if err := rbd.Remove(ctx, se.io, name); err != nil && !notFound(err) {
		return err
	}
	if p := info.Parent; p != nil {
		return se.collect(ctx, *p, name)
	}
	return nil
}

// ValidateVolumeCapabilities confirms the capabilities the driver supports.
func (s *Server) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	id, err := csiceph.ParseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "volume %q: %v", req.GetVolumeId(), err)
	}
	se, v, err := s.openVolume(ctx, id, req.GetSecrets())
	if err != nil {
		return nil, gone(err, "volume "+req.GetVolumeId())
	}
	img, err := rbd.Open(ctx, v.io, v.image, &rbd.OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, se.volumeErr(v, err)
	}
	s.closeImage(ctx, img, v.image)
	if err := csiceph.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// ControllerExpandVolume grows the image; filesystems grow on the node.
func (s *Server) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if err := csiceph.Required("volume_id", req.GetVolumeId()); err != nil {
		return nil, err
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range is required")
	}
	size, err := RoundCapacity(req.GetCapacityRange())
	if err != nil {
		return nil, status.Error(codes.OutOfRange, err.Error())
	}
	se, v, done, err := s.beginVolume(ctx, req.GetVolumeId(), req.GetSecrets())
	if err != nil {
		return nil, err
	}
	defer done()
	img, err := rbd.Open(ctx, v.io, v.image, nil)
	if err != nil {
		return nil, se.volumeErr(v, err)
	}
	defer s.closeImage(ctx, img, v.image)
	// An encrypted image grows to the plaintext asked for plus its
	// header; the capacity is the plaintext.
	st, err := csicrypt.State(ctx, img)
	if err != nil {
		return nil, se.fail(err)
	}
	raw, cur := size, img.Size()
	if st != "" {
		if raw, err = csicrypt.RawSize(ctx, img, size); err != nil {
			return nil, se.fail(err)
		}
		if cur, err = plainSize(ctx, img, cur); err != nil {
			return nil, se.fail(err)
		}
	}
	if raw > img.Size() {
		if err := img.Resize(ctx, raw); err != nil {
			return nil, se.fail(err)
		}
		cur = size
	}
	if err := rescaleQoS(ctx, img); err != nil { // per-GiB QoS limits follow the size
		return nil, se.fail(fmt.Errorf("re-scaling the QoS limits of image %s: %w", v.image, err))
	}
	// The node's device learns the new size in NodeExpandVolume (an
	// encrypted block volume too: its plaintext device).
	nodeExpand := req.GetVolumeCapability() == nil || req.GetVolumeCapability().GetBlock() == nil || st != ""
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: int64(cur), NodeExpansionRequired: nodeExpand}, nil
}
